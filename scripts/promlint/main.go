// marquee-promlint checks a Prometheus text exposition the way
// `promtool check metrics` does: it parses the text strictly (a parse
// error fails) and runs the Prometheus client library's linter (promlint:
// one HELP/TYPE per family, counters end in _total, units in base units,
// no reserved or camel-case names, ...). Reads stdin; prints one line per
// problem; exits 1 if the text does not parse or any problem is found.
//
// Built by scripts/stack.sh install into .stack/bin; used by
// tests/interop/metrics.sh on a running server's /metrics.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func main() {
	text, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "marquee-promlint: reading stdin:", err)
		os.Exit(2)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		fmt.Println("parse error:", err)
		os.Exit(1)
	}
	problems, err := promlint.New(bytes.NewReader(text)).Lint()
	if err != nil {
		fmt.Println("lint error:", err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Printf("%s: %s\n", p.Metric, p.Text)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
	fmt.Printf("marquee-promlint: %d families, no problems\n", len(families))
}
