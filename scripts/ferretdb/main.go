// Command marquee-ferretdb runs FerretDB embedded, on loopback, as Marquee's
// local MongoDB-compatible store (the local stack and CI). It exists because
// `go install` of FerretDB's own cmd panics on a missing version file
// (FerretDB #2982), and because the store needs two things FerretDB does not
// do by itself (docs/ARCHITECTURE.md, "The local store"):
//
//   - Indexed reads. With -postgresql (the default backend of the local
//     stack), FerretDB pushes an equality filter down as
//     `_jsonb->'field' @> value`, which its own btree indexes cannot serve.
//     local.sql installs an event trigger that gives every such index a GIN
//     sibling on the same expression, so a find by _id or by any indexed
//     top-level field is an index lookup. (The planner sees the field name,
//     a query parameter, only in a custom plan: plan_cache_mode is set to
//     force_custom_plan for the database.)
//   - Atomic updates across processes. FerretDB applies an update as read,
//     modify in Go, replace (FerretDB #3040). local.sql stamps every document
//     with a revision `_rev` and refuses (SQLSTATE 40001) a replacement whose
//     `_rev` is not the stored one: a racing update fails instead of undoing
//     another, and Marquee's store retries it (store/mq_store.c).
//
// Flags: -listen (default 127.0.0.1:27017); -postgresql URL (PostgreSQL
// backend; the database is created when missing); otherwise -data DIR
// (SQLite backend: reads by _id and every other filter scan their whole
// collection — kept for measuring against, bench/store.sh).
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/jackc/pgx/v5"
)

//go:embed local.sql
var localSQL string

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on (loopback only)")
	data := flag.String("data", "./ferretdb-data", "directory for SQLite files (SQLite backend)")
	pg := flag.String("postgresql", "", "PostgreSQL URL (PostgreSQL backend), e.g. postgres://postgres@127.0.0.1:54320/marquee")
	flag.Parse()

	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Logger:   slog.New(&quietHandler{slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})}),
	}
	if *pg != "" {
		if err := preparePostgres(*pg); err != nil {
			log.Fatalf("postgresql: %v", err)
		}
		cfg.Handler = "postgresql"
		cfg.PostgreSQLURL = *pg
	} else {
		if err := os.MkdirAll(*data, 0o755); err != nil {
			log.Fatalf("data dir: %v", err)
		}
		cfg.Handler = "sqlite"
		cfg.SQLiteURL = "file:" + *data + "/"
	}
	f, err := ferretdb.New(cfg)
	if err != nil {
		log.Fatalf("ferretdb: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Printf("marquee-ferretdb listening on %s, backend %s", *listen, cfg.Handler)
	f.Run(ctx)
}

// preparePostgres creates the database when missing, then applies local.sql
// (idempotent: functions replaced, the event trigger recreated, tables that
// exist adopted) and the database's plan_cache_mode.
func preparePostgres(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("bad URL: %w", err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" || strings.ContainsAny(db, `"/`) {
		return fmt.Errorf("the URL must name a database, got %q", db)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	maint := *u
	maint.Path = "/postgres"
	var c *pgx.Conn
	for { // PostgreSQL may still be starting
		if c, err = pgx.Connect(ctx, maint.String()); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	var exists bool
	if err = c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, db).Scan(&exists); err == nil && !exists {
		_, err = c.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{db}.Sanitize())
		log.Printf("created database %s", db)
	}
	if err == nil {
		_, err = c.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{db}.Sanitize()+` SET plan_cache_mode = force_custom_plan`)
	}
	c.Close(ctx)
	if err != nil {
		return err
	}

	c, err = pgx.Connect(ctx, raw)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	// one simple-protocol batch: the file holds several statements and dollar-quoted bodies
	if _, err = c.Exec(ctx, localSQL, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("local.sql: %w", err)
	}
	return nil
}

// quietHandler keeps the store's log useful and free of personal data:
// FerretDB logs every failed SQL statement at ERROR with its arguments (whole
// documents: e-mail addresses, names), and dumps every error reply's wire
// message at WARN. It drops the dumps and the arguments, and drops the
// two failures Marquee causes on purpose — a duplicate key (a decision
// record that was already taken, SQLSTATE 23505) and a write conflict
// (local.sql, SQLSTATE 40001; Marquee retries).
type quietHandler struct{ slog.Handler }

func (h *quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "Response ") || strings.HasPrefix(r.Message, "Request ") {
		return nil // a dump of a whole wire message (documents included), logged for every error reply
	}
	keep := true
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if strings.HasPrefix(a.Key, "args") {
			return true
		}
		if a.Key == "err" {
			msg := a.Value.String()
			if strings.Contains(msg, "SQLSTATE 23505") || strings.Contains(msg, "SQLSTATE 40001") {
				keep = false
			}
		}
		out.AddAttrs(a)
		return true
	})
	if !keep {
		return nil
	}
	return h.Handler.Handle(ctx, out)
}

func (h *quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &quietHandler{h.Handler.WithAttrs(as)}
}

func (h *quietHandler) WithGroup(name string) slog.Handler {
	return &quietHandler{h.Handler.WithGroup(name)}
}
