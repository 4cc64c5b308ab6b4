package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tracekeeper/tracekeeper/bench/internal/scenario"
	"github.com/tracekeeper/tracekeeper/exporter"
)

// table is a header and rows of cells, rendered as text or Markdown.
type table struct {
	header []string
	rows   [][]string
	// left is the number of leading columns of text, aligned left in
	// Markdown; zero means two.
	left int
}

// comparison is the main table: one row per scenario, stock beside ours,
// with ratios ours/stock.
func comparison(pairs []Pair) table {
	t := table{header: []string{
		"scenario", "backend",
		"delivered stock", "delivered ours", "ours/stock",
		"p99 End stock", "p99 End ours", "ours/stock",
		"CPU/delivered stock", "CPU/delivered ours", "ours/stock",
		"peak heap stock", "peak heap ours", "ours heap/budget",
		"ours limit end/peak", "ours RTT",
	}}
	for _, p := range pairs {
		row := []string{p.Scenario.Name, p.Scenario.Label()}
		s, o := p.Stock, p.Ours
		row = append(row, cell(s, func(r *scenario.Result) string { return pct(r.DeliveredPct()) }),
			cell(o, func(r *scenario.Result) string { return pct(r.DeliveredPct()) }),
			both(s, o, func(r *scenario.Result) float64 { return float64(r.Delivered) }))
		row = append(row, cell(s, func(r *scenario.Result) string { return dur(r.End.Quantile(0.99)) }),
			cell(o, func(r *scenario.Result) string { return dur(r.End.Quantile(0.99)) }),
			both(s, o, func(r *scenario.Result) float64 { return float64(r.End.Quantile(0.99)) }))
		row = append(row, cell(s, func(r *scenario.Result) string { return perSpan(r) }),
			cell(o, func(r *scenario.Result) string { return perSpan(r) }),
			both(s, o, func(r *scenario.Result) float64 { return float64(r.CPUPerDelivered()) }))
		row = append(row, cell(s, func(r *scenario.Result) string { return mib(r.Usage.PeakLiveHeap) }),
			cell(o, func(r *scenario.Result) string { return mib(r.Usage.PeakLiveHeap) }),
			cell(o, heapOverBudget), cell(o, limits), cell(o, roundTrip))
		t.rows = append(t.rows, row)
	}
	return t
}

// accounting is the table of where every span went.
func accounting(pairs []Pair) table {
	t := table{header: []string{
		"scenario", "pipeline", "offered", "ended", "dropped by BSP queue",
		"handed to exporter", "delivered", "exporter drops", "left at deadline", "books balance", "resumed after outage",
	}}
	for _, p := range pairs {
		for _, r := range p.results() {
			t.rows = append(t.rows, []string{
				p.Scenario.Name, string(r.Pipeline), count(r.Offered), count(r.Ended),
				count(r.Ended - r.Handed), count(r.Handed), count(r.Delivered),
				exporterDrops(r), leftOver(r), balance(r), resumed(r),
			})
		}
	}
	return t
}

// overload is the table of the overload scenarios: every pipeline's
// delivery and how often the backend refused it.
func overload(pairs []Pair) table {
	t := table{header: []string{
		"scenario", "pipeline", "delivered", "requests served", "refused (503)", "refused share",
		"refused share, 2nd half", "peak at backend", "limit end/peak", "limit mean, 2nd half",
	}}
	for _, p := range pairs {
		if p.Scenario.MaxConcurrent <= 0 {
			continue
		}
		for _, r := range p.results() {
			rs := r.Receiver
			t.rows = append(t.rows, []string{
				p.Scenario.Name, pipelineName(r), pct(r.DeliveredPct()), count(rs.Requests), count(rs.Refused),
				pct(scenario.RefusedPct(rs)), pct(scenario.RefusedPct(r.Steady)), count(rs.PeakConcurrent),
				limits(r), steadyLimit(r),
			})
		}
	}
	return t
}

// spool is the table of the scenarios run with and without a disk spool:
// what each of ours delivered of what it was handed, what it cost, and
// what the spool held.
func spool(pairs []Pair) table {
	t := table{header: []string{
		"scenario", "pipeline", "handed to exporter", "delivered", "delivered of handed", "exporter drops",
		"left at deadline", "peak on disk", "peak spans on disk", "peak heap", "CPU per handed span", "books balance",
	}}
	for _, p := range pairs {
		if p.Spool == nil {
			continue
		}
		for _, r := range []*scenario.Result{p.Stock, p.Ours, p.Spool} {
			if r == nil {
				continue
			}
			onDisk, spans := "–", "–"
			if r.Pipeline == scenario.OursSpool {
				onDisk, spans = mib(uint64(r.Watch.PeakSpoolBytes)), count(r.Watch.PeakSpooled)
			}
			t.rows = append(t.rows, []string{
				p.Scenario.Name, string(r.Pipeline), count(r.Handed), count(r.Delivered),
				pct(handedPct(r)), exporterDrops(r), leftOver(r), onDisk, spans,
				mib(r.Usage.PeakLiveHeap), perHanded(r), balance(r),
			})
		}
	}
	return t
}

// hasSpool reports whether any pair ran ours with a spool.
func hasSpool(pairs []Pair) bool {
	for _, p := range pairs {
		if p.Spool != nil {
			return true
		}
	}
	return false
}

// handedPct is the share of the spans handed to the exporter that the
// receiver got, in percent.
func handedPct(r *scenario.Result) float64 {
	if r.Handed == 0 {
		return 0
	}
	return 100 * float64(r.Delivered) / float64(r.Handed)
}

// perHanded is the process's CPU time per span handed to the exporter:
// what a span costs whether or not it could be delivered.
func perHanded(r *scenario.Result) string {
	if r.Handed == 0 {
		return "–"
	}
	return dur(r.Usage.CPU / time.Duration(r.Handed))
}

// pipelineName names a result's pipeline, with the pool size of a fixed
// one.
func pipelineName(r *scenario.Result) string {
	if r.Pipeline == scenario.OursFixed {
		return fmt.Sprintf("%s (WithWorkers(%d))", r.Pipeline, r.Scenario.MaxConcurrent)
	}
	return string(r.Pipeline)
}

// hasOverload reports whether any pair is an overload scenario.
func hasOverload(pairs []Pair) bool {
	for _, p := range pairs {
		if p.Scenario.MaxConcurrent > 0 {
			return true
		}
	}
	return false
}

// heapOverBudget is how far the process's live heap rose above where it
// started, as a multiple of our exporter's memory budget.
func heapOverBudget(r *scenario.Result) string {
	b := r.Watch.Budget
	if b <= 0 && r.Exporter != nil {
		b = r.Exporter.MemoryBudget
	}
	if b <= 0 || r.Usage.PeakLiveHeap < r.Usage.StartLiveHeap {
		return "–"
	}
	return ratio(float64(r.Usage.PeakLiveHeap-r.Usage.StartLiveHeap), float64(b))
}

// limits is our exporter's concurrency limit when the load ended and the
// largest seen.
func limits(r *scenario.Result) string {
	if r.Watch.Samples == 0 {
		return "–"
	}
	return fmt.Sprintf("%d / %d", r.Watch.EndLimit, r.Watch.PeakLimit)
}

func steadyLimit(r *scenario.Result) string {
	if r.Watch.Samples == 0 || r.Watch.SteadyLimit == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", r.Watch.SteadyLimit)
}

func roundTrip(r *scenario.Result) string {
	if r.Watch.Samples == 0 || r.Watch.RoundTrip <= 0 {
		return "–"
	}
	return dur(r.Watch.RoundTrip.Round(100 * time.Microsecond))
}

func cell(r *scenario.Result, f func(*scenario.Result) string) string {
	if r == nil {
		return "–"
	}
	return f(r)
}

// both returns the ratio ours/stock of a figure.
func both(s, o *scenario.Result, f func(*scenario.Result) float64) string {
	if s == nil || o == nil {
		return "–"
	}
	return ratio(f(o), f(s))
}

func perSpan(r *scenario.Result) string {
	if r.Delivered == 0 {
		return "–"
	}
	return dur(r.CPUPerDelivered())
}

// exporterDrops says what the exporter lost: for ours, its own count by
// reason; for the stock exporter, which does not say, the spans handed to
// it that did not arrive.
func exporterDrops(r *scenario.Result) string {
	if r.Exporter == nil {
		return count(r.Handed-r.Delivered) + " (unreported)"
	}
	st := r.Exporter
	var parts []string
	for _, reason := range []exporter.Reason{
		exporter.ReasonQueueFull, exporter.ReasonRetriesExhausted, exporter.ReasonPermanentError,
		exporter.ReasonRejected, exporter.ReasonShutdown, exporter.ReasonConfig, exporter.ReasonTooLarge,
	} {
		if n := st.Dropped.Get(reason); n > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", reason, count(n)))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ", ")
}

// leftOver is what was still queued or in flight in our exporter after the
// shutdown; it is zero whenever the shutdown completed or was cut short,
// since the exporter then counts the rest dropped with reason shutdown.
func leftOver(r *scenario.Result) string {
	if r.Exporter == nil {
		if r.Unsettled {
			return "still exporting"
		}
		return "–"
	}
	return count(r.Exporter.Queued + r.Exporter.InFlight)
}

// balance checks our exporter's books: it accepted every span handed to
// it, and each accepted span is exported, dropped, queued or in flight.
func balance(r *scenario.Result) string {
	st := r.Exporter
	if st == nil {
		return "–"
	}
	sum := st.Exported + st.Dropped.Total() + st.Queued + st.InFlight
	switch {
	case st.Accepted != r.Handed:
		return fmt.Sprintf("no: accepted %s of %s", count(st.Accepted), count(r.Handed))
	case sum != st.Accepted:
		return fmt.Sprintf("no: %s unaccounted", count(st.Accepted-sum))
	}
	return "yes"
}

func resumed(r *scenario.Result) string {
	switch d := r.Receiver.Resumed; {
	case r.Scenario.Outage == scenario.Available:
		return "–"
	case d < 0:
		return "never"
	default:
		return dur(d.Round(time.Millisecond))
	}
}

// Text writes the comparison and the accounting as aligned plain text.
func Text(w io.Writer, results []*scenario.Result) error {
	pairs := Pairs(results)
	var b strings.Builder
	writeText(&b, comparison(pairs))
	b.WriteString("\n")
	writeText(&b, accounting(pairs))
	if hasOverload(pairs) {
		b.WriteString("\n")
		writeText(&b, overload(pairs))
	}
	if hasSpool(pairs) {
		b.WriteString("\n")
		writeText(&b, spool(pairs))
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("report: write text: %w", err)
	}
	return nil
}

func writeText(b *strings.Builder, t table) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
}

func writeMarkdown(b *strings.Builder, t table) {
	b.WriteString("| " + strings.Join(t.header, " | ") + " |\n|")
	left := t.left
	if left == 0 {
		left = 2
	}
	for i := range t.header {
		if i < left {
			b.WriteString("---|")
		} else {
			b.WriteString("--:|")
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
}

// Markdown writes the results as a Markdown page: how they were made, the
// comparison table, where every span went, and a reference to the chart
// (chart is its path relative to the page; empty for none).
func Markdown(w io.Writer, results []*scenario.Result, meta Meta, chart string) error {
	pairs := Pairs(results)
	var b strings.Builder
	b.WriteString("# Stock batcher vs tracekeeper: delivery under load\n\n")
	fmt.Fprintf(&b, "Offered load: %s spans/s%s with 8 attributes each, ended from %d goroutines; ",
		count(int64(meta.Rate)), ownRates(pairs), scenario.DefaultGoroutines)
	fmt.Fprintf(&b, "each pipeline then gets %s to shut down. ", meta.ShutdownTimeout)
	b.WriteString(setup(meta) + " ")
	b.WriteString("against the same embedded OTLP/HTTP receiver, " +
		"one after the other in one process: stock is `sdktrace.WithBatcher(otlptracehttp.New(...))`, " +
		"ours is `sdktrace.WithBatcher(exporter.New(...))`.\n\n")
	if meta.Command != "" {
		fmt.Fprintf(&b, "Command: `%s`  \n", meta.Command)
	}
	if meta.Machine != "" {
		fmt.Fprintf(&b, "Machine: %s  \n", meta.Machine)
	}
	if meta.Load != "" {
		fmt.Fprintf(&b, "Load average at start: %s  \n", meta.Load)
	}
	if !meta.Date.IsZero() {
		fmt.Fprintf(&b, "Date: %s  \n", meta.Date.UTC().Format("2006-01-02 15:04 MST"))
	}
	b.WriteString("\n")
	if chart != "" {
		fmt.Fprintf(&b, "![delivered spans and p99 span.End() latency per scenario](%s)\n\n", chart)
	}
	writeMarkdown(&b, comparison(pairs))
	b.WriteString("\nDelivered: spans the receiver answered with success before the shutdown deadline, " +
		"as a share of the spans ended. p99 End: 99th percentile of the time `span.End()` took in " +
		"the application's goroutine. CPU/delivered: process CPU time (load generator, pipeline and " +
		"receiver together) per delivered span. Peak heap: largest live heap after a garbage collection, " +
		"for the whole process")
	if h := startHeap(results); h > 0 {
		fmt.Fprintf(&b, ", which holds about %s before each run", mib(h))
	}
	b.WriteString(".")
	if q := queueBudget(results); q > 0 {
		fmt.Fprintf(&b, " Our exporter's memory budget (WithMemoryBudget), shared by queued spans and "+
			"requests in flight: %s. Ours heap/budget: how far the live heap rose above where it started, "+
			"as a multiple of that budget (the BatchSpanProcessor's queue and the receiver included).", mib(uint64(q)))
	}
	b.WriteString(" Ours limit: the concurrency limit of our exporter (Stats.ConcurrencyLimit) when the load " +
		"ended and the largest seen; RTT: the round-trip time it adapted to.\n\n")
	b.WriteString("## Where every span went\n\n")
	writeMarkdown(&b, accounting(pairs))
	b.WriteString("\nThe stock exporter does not count its failures: its drops are the spans handed to it " +
		"that never arrived. Ours counts every span it accepts as exported or dropped with a reason.\n")
	if hasOverload(pairs) {
		b.WriteString("\n## Overload\n\n")
		b.WriteString(overloadIntro)
		writeMarkdown(&b, overload(pairs))
		b.WriteString("\n" + overloadNotes)
	}
	if hasSpool(pairs) {
		b.WriteString("\n## Disk spool\n\n")
		b.WriteString(spoolIntro)
		writeMarkdown(&b, spool(pairs))
		b.WriteString("\n" + spoolNotes)
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("report: write markdown: %w", err)
	}
	return nil
}

const overloadIntro = "The backend serves a fixed number of requests at once and answers " +
	"503 Service Unavailable, without Retry-After, to any request beyond them. Ours adapts its " +
	"concurrency; tracekeeper-fixed is ours with a fixed pool exactly as large as the backend's " +
	"capacity (`exporter.WithWorkers`), the best a fixed setting can do; stock sends one request at a time.\n\n"

const overloadNotes = "Requests served: answered with success. Refused share: refused requests as a share " +
	"of all the requests the backend answered, over the whole run and over the load's second half alone " +
	"(the steady state, after the limit has come down from its start). Peak at backend: the most requests " +
	"it served at once. Limit mean: the exporter's concurrency limit averaged over the load's second half.\n"

const spoolIntro = "The outage scenarios also run ours with a disk spool (`exporter.WithSpool`, " +
	"in a fresh temporary directory, its disk budget at the default unless -spool-max says otherwise): " +
	"what the memory budget cannot hold goes to disk and is sent once the backend is back.\n\n"

const spoolNotes = "Delivered of handed: the spans the receiver got as a share of those the " +
	"BatchSpanProcessor handed to the exporter. Peak on disk: the most disk the spool used " +
	"(Stats.SpoolBytes), and the most spans it held (Stats.Spooled), sampled while the load ran. " +
	"CPU per handed span: the process's CPU time, from the start of the load to the end of the shutdown, " +
	"per span handed to the exporter, delivered or not.\n"

// setup says how the pipelines were configured, as a sentence ending in
// the receiver they ran against.
func setup(meta Meta) string {
	var changes []string
	if meta.BSPQueue > 0 {
		changes = append(changes, fmt.Sprintf("the BatchSpanProcessor's queue, raised to %s spans for both "+
			"(`sdktrace.WithMaxQueueSize`)", count(int64(meta.BSPQueue))))
	}
	if meta.Gzip {
		changes = append(changes, "gzip compression for both (`otlptracehttp.WithCompression`, `exporter.WithCompression`)")
	}
	if meta.H2C {
		changes = append(changes, "HTTP/2 without TLS for both, each through an `http.Client` of its own "+
			"(`otlptracehttp.WithHTTPClient`, `exporter.WithHTTPClient`)")
	}
	if meta.MemoryBudget > 0 {
		changes = append(changes, fmt.Sprintf("our memory budget, set to %s (`exporter.WithMemoryBudget`)",
			mib(uint64(meta.MemoryBudget))))
	}
	if len(changes) == 0 {
		return "Both pipelines run with their defaults"
	}
	return "Both pipelines run with their defaults, except " + strings.Join(changes, "; ") + ","
}

// queueBudget is our exporter's memory budget, from the first result that
// has it.
func queueBudget(results []*scenario.Result) int64 {
	for _, r := range results {
		if r.Exporter != nil && r.Exporter.MemoryBudget > 0 {
			return r.Exporter.MemoryBudget
		}
	}
	return 0
}

// startHeap is the smallest live heap at the start of a run.
func startHeap(results []*scenario.Result) uint64 {
	var h uint64
	for _, r := range results {
		if s := r.Usage.StartLiveHeap; s > 0 && (h == 0 || s < h) {
			h = s
		}
	}
	return h
}
