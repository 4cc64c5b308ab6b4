package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tracekeeper/tracekeeper/bench/internal/encodecost"
	"github.com/tracekeeper/tracekeeper/bench/internal/scenario"
)

func TestReplaceBlock(t *testing.T) {
	const doc = "# Title\n\nprose before\n\n<!-- compare:begin -->\nold table\nold figure\n<!-- compare:end -->\n\nprose after\n"
	tests := []struct {
		name    string
		doc     string
		content string
		want    string
		wantErr string
	}{
		{"replaces", doc, "new table\n",
			"# Title\n\nprose before\n\n<!-- compare:begin -->\nnew table\n<!-- compare:end -->\n\nprose after\n", ""},
		{"adds the last newline", doc, "new",
			"# Title\n\nprose before\n\n<!-- compare:begin -->\nnew\n<!-- compare:end -->\n\nprose after\n", ""},
		{"fills an empty block", "a\n<!-- compare:begin -->\n<!-- compare:end -->\nb\n", "x\n",
			"a\n<!-- compare:begin -->\nx\n<!-- compare:end -->\nb\n", ""},
		{"empties a block", doc, "",
			"# Title\n\nprose before\n\n<!-- compare:begin -->\n<!-- compare:end -->\n\nprose after\n", ""},
		{"keeps CRLF around it", "a\r\n<!-- compare:begin -->\r\nold\r\n<!-- compare:end -->\r\nb\r\n", "x\n",
			"a\r\n<!-- compare:begin -->\r\nx\n<!-- compare:end -->\r\nb\r\n", ""},
		{"no begin", "<!-- compare:end -->\n", "x", "", "no line"},
		{"no end", "<!-- compare:begin -->\n", "x", "", "no line"},
		{"twice", doc + doc, "x", "", "more than once"},
		{"wrong order", "<!-- compare:end -->\n<!-- compare:begin -->\n", "x", "", "comes before"},
		{"a marker inside a line is not one", "see <!-- compare:begin --> here\n<!-- compare:end -->\n", "x", "", "no line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReplaceBlock([]byte(tt.doc), ReadmeBlock, tt.content)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// TestREADMEBlock rewrites the block of a README in a temporary directory
// twice, as two runs of the compare command would, and checks that the
// prose around it stays and that only the last run's figures remain.
func TestREADMEBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	before := "# Project\n\n## Performance\n\n<!-- compare:begin -->\n| hand-typed | 1.23 µs |\n<!-- compare:end -->\n\n## Next\n\nmore prose\n"
	if err := os.WriteFile(path, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	meta := Meta{Command: "go run -C bench ./cmd/compare", Machine: "test machine", Rate: 1000,
		ShutdownTimeout: time.Second, Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	enc := &encodecost.Result{Spans: 512, Pairs: 10, StockNs: 5000, OursNs: 500,
		RatioMedian: 10, RatioMin: 8, RatioMax: 12, StockAllocs: 30, OursAllocs: 0.001}
	write := func(results []*scenario.Result, rd Readme) string {
		t.Helper()
		var b strings.Builder
		if err := README(&b, results, meta, rd); err != nil {
			t.Fatal(err)
		}
		doc, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc, err = ReplaceBlock(doc, ReadmeBlock, b.String())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		return string(doc)
	}
	_ = write(sampleResults(), Readme{Chart: "bench/results/compare.svg", Page: "bench/results/compare.md", Encode: enc})
	rs := append(sampleResults(), overloadResults()...)
	rs[1].Delivered = 990 // a second run with other figures
	got := write(rs, Readme{Chart: "bench/results/compare.svg", Page: "bench/results/compare.md", Encode: enc})

	if !strings.HasPrefix(got, "# Project\n\n## Performance\n\n<!-- compare:begin -->\n") ||
		!strings.HasSuffix(got, "<!-- compare:end -->\n\n## Next\n\nmore prose\n") {
		t.Errorf("the prose around the block changed:\n%s", got)
	}
	if strings.Count(got, "<!-- compare:begin -->") != 1 || strings.Count(got, "Measured with") != 1 {
		t.Errorf("the block is not there exactly once:\n%s", got)
	}
	for _, want := range []string{
		"Measured with `go run -C bench ./cmd/compare` on test machine, 2026-01-02.",
		"![delivered spans and p99 span.End() latency per scenario](bench/results/compare.svg)",
		"| backend latency 0s | 60.0% | 99.0% | 1.65× |",
		"| 503 for 500ms, then healthy | 10.0% | 75.0% |",
		"| tracekeeper-fixed (WithWorkers(4)) |",
		"[bench/results/compare.md](bench/results/compare.md)",
		"| encoding 512 spans × 8 attributes, per span | 5.00 µs, 30.00 allocs (tracetransform + proto.Marshal) | 500 ns, 0.0010 allocs | 10.0× (8.00×–12.0×) |",
		"- 503 for 500ms, then healthy: sending resumed",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("README lacks %q:\n%s", want, got)
		}
	}
	for _, gone := range []string{"hand-typed", "| 100.0% | 1.67× |"} {
		if strings.Contains(got, gone) {
			t.Errorf("README still has %q from before:\n%s", gone, got)
		}
	}
}

func TestREADMENoResults(t *testing.T) {
	var b strings.Builder
	if err := README(&b, nil, Meta{}, Readme{}); err == nil {
		t.Error("README of no results succeeded")
	}
}
