package report

import (
	"fmt"
	"math"
	"time"

	"github.com/tracekeeper/tracekeeper/bench/internal/scenario"
)

// Pair holds the pipelines' results for one scenario; any may be nil when
// that pipeline was not run. Fixed is ours with a fixed pool of workers,
// which only the overload scenarios run; Spool is ours with a disk spool,
// which only the spool scenarios run.
type Pair struct {
	Scenario                  scenario.Scenario
	Stock, Ours, Fixed, Spool *scenario.Result
}

// results returns the pair's results that are there, stock first.
func (p Pair) results() []*scenario.Result {
	var out []*scenario.Result
	for _, r := range []*scenario.Result{p.Stock, p.Ours, p.Fixed, p.Spool} {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// Pairs groups results by scenario, in the order the scenarios first
// appear.
func Pairs(results []*scenario.Result) []Pair {
	var out []Pair
	index := make(map[string]int)
	for _, r := range results {
		i, ok := index[r.Scenario.Name]
		if !ok {
			i = len(out)
			index[r.Scenario.Name] = i
			out = append(out, Pair{Scenario: r.Scenario})
		}
		switch r.Pipeline {
		case scenario.Stock:
			out[i].Stock = r
		case scenario.Ours:
			out[i].Ours = r
		case scenario.OursFixed:
			out[i].Fixed = r
		case scenario.OursSpool:
			out[i].Spool = r
		}
	}
	return out
}

// Meta describes the run, for the Markdown page and the chart's footnote.
type Meta struct {
	// Command is the command line that produced the results.
	Command string
	// Machine describes the computer: CPU model, cores, OS and Go
	// version.
	Machine string
	// Load is the system load average when the run began.
	Load string
	// Date is when the run began.
	Date time.Time
	// Rate is the offered load, spans per second.
	Rate int
	// ShutdownTimeout is the deadline given to each pipeline's shutdown.
	ShutdownTimeout time.Duration
	// BSPQueue is the BatchSpanProcessor's queue size both pipelines ran
	// with; zero means the SDK's default.
	BSPQueue int
	// Gzip says both pipelines compressed their requests with gzip.
	Gzip bool
	// H2C says both pipelines sent HTTP/2 without TLS.
	H2C bool
	// MemoryBudget is the memory budget our exporter was given; zero
	// means its default.
	MemoryBudget int
}

// pct formats a percentage with the precision its size needs.
func pct(v float64) string {
	switch {
	case v >= 99.95 && v < 100:
		return fmt.Sprintf("%.2f%%", v)
	case v >= 10:
		return fmt.Sprintf("%.1f%%", v)
	default:
		return fmt.Sprintf("%.2f%%", v)
	}
}

// ratio formats a/b as "1.5×", or "–" when it has no meaning.
func ratio(a, b float64) string {
	if b == 0 || a == 0 || math.IsNaN(a/b) || math.IsInf(a/b, 0) {
		return "–"
	}
	r := a / b
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f×", r)
	case r >= 10:
		return fmt.Sprintf("%.1f×", r)
	default:
		return fmt.Sprintf("%.2f×", r)
	}
}

// dur formats a duration with three significant digits in a fixed unit
// choice: ns, µs, ms or s.
func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Microsecond:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	case d < time.Millisecond:
		return sig3(float64(d)/float64(time.Microsecond)) + " µs"
	case d < time.Second:
		return sig3(float64(d)/float64(time.Millisecond)) + " ms"
	default:
		return sig3(d.Seconds()) + " s"
	}
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// mib formats a byte count in MiB.
func mib(b uint64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// count formats a span count with thousands separators.
func count(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := fmt.Sprintf("%d", n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
