package report

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tracekeeper/tracekeeper/bench/internal/scenario"
	"github.com/tracekeeper/tracekeeper/exporter"
)

// result makes a result whose span.End() durations are all end.
func result(sc scenario.Scenario, kind scenario.Kind, ended, handed, delivered int64, end time.Duration) *scenario.Result {
	r := &scenario.Result{
		Scenario: sc, Pipeline: kind, Rate: 1000,
		Offered: ended, Ended: ended, Handed: handed, Delivered: delivered,
		Usage: scenario.Usage{CPU: time.Second, PeakLiveHeap: 8 << 20},
	}
	for range 100 {
		r.End.Record(end)
	}
	if kind == scenario.Ours {
		r.Exporter = &exporter.Stats{
			Accepted: handed, Exported: delivered,
			Dropped:      exporter.Drops{QueueFull: handed - delivered},
			MemoryBudget: 16 << 20,
		}
	}
	return r
}

// standard returns the standard scenario named name.
func standard(name string) scenario.Scenario {
	for _, sc := range scenario.Standard(time.Second, 500*time.Millisecond) {
		if sc.Name == name {
			return sc
		}
	}
	panic("no standard scenario " + name)
}

func sampleResults() []*scenario.Result {
	healthy, outage := standard("latency-0ms"), standard("outage-503")
	return []*scenario.Result{
		result(healthy, scenario.Stock, 1000, 600, 600, 2*time.Microsecond),
		result(healthy, scenario.Ours, 1000, 1000, 1000, 2*time.Microsecond),
		result(outage, scenario.Stock, 2000, 300, 200, 3*time.Microsecond),
		result(outage, scenario.Ours, 2000, 2000, 1500, 2*time.Microsecond),
	}
}

// overloadResults are the three pipelines' results in the overload
// scenario.
func overloadResults() []*scenario.Result {
	sc := standard("overload-4")
	var out []*scenario.Result
	for i, kind := range sc.Pipelines(scenario.Kinds) {
		r := result(sc, kind, 1000, 1000, 900, time.Microsecond)
		r.Receiver = scenario.ReceiverStats{Requests: 90, Failed: int64(10 * i), Refused: int64(10 * i), PeakConcurrent: 4}
		r.Steady = scenario.ReceiverStats{Requests: 45, Failed: int64(i), Refused: int64(i)}
		if kind != scenario.Stock {
			r.Watch = scenario.Watch{Samples: 10, PeakLimit: 16, EndLimit: 5, SteadyLimit: 4.5, RoundTrip: 100 * time.Millisecond, Budget: 32 << 20}
		}
		out = append(out, r)
	}
	return out
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"pct whole", pct(100), "100.0%"},
		{"pct near whole", pct(99.97), "99.97%"},
		{"pct small", pct(2.345), "2.35%"},
		{"pct mid", pct(38.04), "38.0%"},
		{"ratio", ratio(3, 2), "1.50×"},
		{"ratio large", ratio(250, 2), "125×"},
		{"ratio of nothing", ratio(0, 2), "–"},
		{"ratio to nothing", ratio(2, 0), "–"},
		{"ns", dur(850), "850 ns"},
		{"µs", dur(2367 * time.Nanosecond), "2.37 µs"},
		{"ms", dur(125 * time.Millisecond), "125 ms"},
		{"s", dur(2090 * time.Millisecond), "2.09 s"},
		{"count", count(1234567), "1,234,567"},
		{"count small", count(12), "12"},
		{"count negative", count(-1234), "-1,234"},
		{"mib", mib(3 << 19), "1.5 MiB"},
		{"axis", trimFloat(2.50), "2.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestNiceCeil(t *testing.T) {
	for _, tt := range []struct{ in, want float64 }{
		{0, 1}, {0.3, 0.5}, {1, 1}, {1.2, 2}, {3, 5}, {7, 10}, {45, 50}, {101, 200},
	} {
		if got := niceCeil(tt.in); got != tt.want {
			t.Errorf("niceCeil(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestPairs(t *testing.T) {
	rs := sampleResults()
	pairs := Pairs(rs)
	if len(pairs) != 2 {
		t.Fatalf("%d pairs, want 2", len(pairs))
	}
	for i, p := range pairs {
		if p.Stock != rs[2*i] || p.Ours != rs[2*i+1] {
			t.Errorf("pair %d holds the wrong results", i)
		}
	}
}

func TestSVG(t *testing.T) {
	var b strings.Builder
	if err := SVG(&b, sampleResults(), Meta{Rate: 1000, Machine: "test <machine> & co", Date: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	bars := map[string]int{}
	dec := xml.NewDecoder(strings.NewReader(b.String()))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b.String())
		}
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "rect" {
			for _, a := range el.Attr {
				if a.Name.Local == "fill" {
					bars[a.Value]++
				}
			}
		}
	}
	// Two panels, two scenarios, one bar per pipeline, plus the legend.
	if bars[stockColour] != 5 || bars[oursColour] != 5 {
		t.Errorf("bars by colour %v, want 5 of each", bars)
	}
	if !strings.Contains(b.String(), "test &lt;machine&gt; &amp; co") {
		t.Error("the footnote is not escaped")
	}
}

func TestMarkdown(t *testing.T) {
	var b strings.Builder
	meta := Meta{Command: "go run ./cmd/compare", Machine: "test", Rate: 1000, ShutdownTimeout: time.Second}
	if err := Markdown(&b, sampleResults(), meta, "compare.svg"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"](compare.svg)",
		"| scenario | backend | delivered stock | delivered ours | ours/stock |",
		"| latency-0ms | 0s latency | 60.0% | 100.0% | 1.67× |",
		"| outage-503 | stock | 2,000 | 2,000 | 1,700 | 300 | 200 | 100 (unreported) |",
		"| outage-503 | tracekeeper | 2,000 | 2,000 | 0 | 2,000 | 1,500 | queue_full 500 | 0 | yes |",
		"Command: `go run ./cmd/compare`",
		"memory budget (WithMemoryBudget), shared by queued spans and requests in flight: 16.0 MiB",
		"Both pipelines run with their defaults against",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
}

func TestOverloadTable(t *testing.T) {
	rs := overloadResults()
	pairs := Pairs(rs)
	if len(pairs) != 1 || pairs[0].Fixed != rs[2] {
		t.Fatalf("pairs %+v: the fixed pool's result is not paired", pairs)
	}
	var b strings.Builder
	meta := Meta{Rate: 1000, ShutdownTimeout: time.Second, BSPQueue: 16384, Gzip: true, MemoryBudget: 96 << 20}
	if err := Markdown(&b, rs, meta, ""); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"## Overload",
		"| overload-4 | stock | 90.0% | 90 | 0 | 0.00% | 0.00% | 4 | – | – |",
		"| overload-4 | tracekeeper | 90.0% | 90 | 10 | 10.0% | 2.17% | 4 | 5 / 16 | 4.5 |",
		"| overload-4 | tracekeeper-fixed (WithWorkers(4)) | 90.0% | 90 | 20 | 18.2% | 4.26% | 4 | 5 / 16 | 4.5 |",
		"queue, raised to 16,384 spans for both",
		"gzip compression for both",
		"our memory budget, set to 96.0 MiB",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if err := Text(&b, rs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "refused share, 2nd half") {
		t.Errorf("text lacks the overload table:\n%s", b.String())
	}
}

func TestBalance(t *testing.T) {
	sc := scenario.Standard(time.Second, time.Second)[0]
	tests := []struct {
		name string
		r    *scenario.Result
		want string
	}{
		{"stock has no books", result(sc, scenario.Stock, 10, 10, 10, 0), "–"},
		{"balanced", result(sc, scenario.Ours, 10, 8, 5, 0), "yes"},
		{"not all accepted", func() *scenario.Result {
			r := result(sc, scenario.Ours, 10, 8, 5, 0)
			r.Handed = 9
			return r
		}(), "no: accepted 8 of 9"},
		{"spans missing", func() *scenario.Result {
			r := result(sc, scenario.Ours, 10, 8, 5, 0)
			r.Exporter.Exported = 4
			return r
		}(), "no: 1 unaccounted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := balance(tt.r); got != tt.want {
				t.Errorf("balance = %q, want %q", got, tt.want)
			}
		})
	}
}
