// Command marquee-ferretdb runs FerretDB embedded with its SQLite backend on
// loopback, for Marquee's local stack and CI. It exists because `go install`
// of FerretDB's own cmd panics on a missing version file (FerretDB #2982).
// Flags: -listen (default 127.0.0.1:27017), -data (SQLite directory).
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on (loopback only)")
	data := flag.String("data", "./ferretdb-data", "directory for SQLite files")
	flag.Parse()

	if err := os.MkdirAll(*data, 0o755); err != nil {
		log.Fatalf("data dir: %v", err)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Handler:   "sqlite",
		SQLiteURL: "file:" + *data + "/",
	})
	if err != nil {
		log.Fatalf("ferretdb: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Printf("marquee-ferretdb listening on %s, data in %s", *listen, *data)
	f.Run(ctx)
}
