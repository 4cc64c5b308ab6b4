package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tracekeeper/tracekeeper/bench/internal/encodecost"
	"github.com/tracekeeper/tracekeeper/bench/internal/scenario"
)

// ReadmeBlock names the block of the README that the compare command
// rewrites: everything between the lines "<!-- compare:begin -->" and
// "<!-- compare:end -->".
const ReadmeBlock = "compare"

// ReplaceBlock returns doc with the lines between the markers of the block
// name ("<!-- name:begin -->" and "<!-- name:end -->", each alone on its
// line) replaced by content; the markers stay. It is an error for either
// marker to be missing, to appear twice, or to come in the wrong order.
func ReplaceBlock(doc []byte, name, content string) ([]byte, error) {
	begin, end := "<!-- "+name+":begin -->", "<!-- "+name+":end -->"
	bi, err := markerLine(doc, begin)
	if err != nil {
		return nil, err
	}
	ei, err := markerLine(doc, end)
	if err != nil {
		return nil, err
	}
	if ei < bi {
		return nil, fmt.Errorf("report: %q comes before %q", end, begin)
	}
	afterBegin := bi + len(begin)
	if afterBegin < len(doc) && doc[afterBegin] == '\r' {
		afterBegin++
	}
	if afterBegin < len(doc) && doc[afterBegin] == '\n' {
		afterBegin++
	}
	var out bytes.Buffer
	out.Grow(len(doc) + len(content))
	out.Write(doc[:afterBegin])
	if afterBegin == bi+len(begin) { // the begin marker ended the file
		out.WriteByte('\n')
	}
	out.WriteString(content)
	if content != "" && !strings.HasSuffix(content, "\n") {
		out.WriteByte('\n')
	}
	out.Write(doc[ei:])
	return out.Bytes(), nil
}

// markerLine returns the offset of the only line of doc that is marker,
// surrounding spaces allowed.
func markerLine(doc []byte, marker string) (int, error) {
	at := -1
	off := 0
	for line := range bytes.Lines(doc) {
		if string(bytes.TrimSpace(line)) == marker {
			if at >= 0 {
				return 0, fmt.Errorf("report: %q appears more than once", marker)
			}
			at = off + bytes.Index(line, []byte(marker))
		}
		off += len(line)
	}
	if at < 0 {
		return 0, fmt.Errorf("report: no line %q", marker)
	}
	return at, nil
}

// Readme is what the README's performance block shows besides the
// results: where the chart and the full page are, relative to the README
// (empty for none), and the paired encode measurement (nil for none).
type Readme struct {
	Chart, Page string
	Encode      *encodecost.Result
}

// README writes the content of the README's performance block: how the
// run was made, the chart, the comparison table, the overload table, a few
// figures read from the results, and the encode measurement. Every figure
// in it comes from the results given.
func README(w io.Writer, results []*scenario.Result, meta Meta, rd Readme) error {
	if len(results) == 0 {
		return errors.New("report: no results for the README")
	}
	pairs := Pairs(results)
	var b strings.Builder
	b.WriteString("<!-- Written by `go run -C bench ./cmd/compare`: edit the command, not this block. -->\n")
	fmt.Fprintf(&b, "Measured with `%s`", meta.Command)
	if meta.Machine != "" {
		fmt.Fprintf(&b, " on %s", meta.Machine)
	}
	if !meta.Date.IsZero() {
		fmt.Fprintf(&b, ", %s", meta.Date.UTC().Format("2006-01-02"))
	}
	if meta.Load != "" {
		fmt.Fprintf(&b, " (load average %s at the start)", meta.Load)
	}
	fmt.Fprintf(&b, ". Each scenario ends spans with 8 attributes at %s spans/s from %d goroutines for %s%s",
		count(int64(meta.Rate)), scenario.DefaultGoroutines, durations(pairs), ownRates(pairs))
	fmt.Fprintf(&b, ", against an OTLP/HTTP receiver embedded in the same process, then gives each pipeline %s to shut down. ",
		meta.ShutdownTimeout)
	b.WriteString(setup(meta) + ":\n\n")
	if rd.Chart != "" {
		fmt.Fprintf(&b, "![delivered spans and p99 span.End() latency per scenario](%s)\n\n", rd.Chart)
	}
	writeMarkdown(&b, readmeTable(pairs))
	b.WriteString("\nOurs, heap/budget: how far the process's live heap rose above where it started, as a multiple " +
		"of our exporter's memory budget")
	if q := queueBudget(results); q > 0 {
		fmt.Fprintf(&b, " (%s)", mib(uint64(q)))
	}
	b.WriteString("; limit: its concurrency limit when the load ended / the largest seen; RTT: the round trip it adapted to.\n")

	if hasOverload(pairs) {
		for _, p := range pairs {
			if p.Scenario.MaxConcurrent > 0 {
				fmt.Fprintf(&b, "\nAgainst a backend that serves %d requests at once, each after %s, and answers 503 beyond "+
					"(`%s`): ours, ours with a fixed pool of %d workers, and stock.\n\n",
					p.Scenario.MaxConcurrent, p.Scenario.Latency, p.Scenario.Name, p.Scenario.MaxConcurrent)
			}
		}
		writeMarkdown(&b, overload(pairs))
		b.WriteString("\nRefused share: the backend's 503s as a share of all the requests it answered, over the " +
			"whole run and over the load's second half alone.\n")
	}
	if hasSpool(pairs) {
		b.WriteString("\nThe outages again, with ours also run with a disk spool (`exporter.WithSpool`): " +
			"every pipeline's delivery of what it was handed, the disk and heap it used, and its CPU time per span.\n\n")
		writeMarkdown(&b, spool(pairs))
	}
	if rd.Page != "" {
		fmt.Fprintf(&b, "\nThe full tables, with where every span went, are in [%s](%s). In this run:\n\n", rd.Page, rd.Page)
	} else {
		b.WriteString("\nIn this run:\n\n")
	}
	for _, f := range findings(pairs) {
		b.WriteString("- " + f + "\n")
	}
	if e := rd.Encode; e != nil {
		fmt.Fprintf(&b, "\nEncoding, in the same process (`BenchmarkEncodePaired`, package `bench/internal/encodecost`): "+
			"%d pairs of the same batch, stock and ours alternating:\n\n", e.Pairs)
		b.WriteString("| benchmark | stock | ours | stock/ours per pair, median (min–max) |\n|---|--:|--:|--:|\n")
		fmt.Fprintf(&b, "| encoding %d spans × 8 attributes, per span | %s, %.2f allocs (tracetransform + proto.Marshal) | %s, %.4f allocs | %s (%s–%s) |\n",
			e.Spans, dur(time.Duration(e.StockNs)), e.StockAllocs, dur(time.Duration(e.OursNs)), e.OursAllocs,
			ratio(e.RatioMedian, 1), ratio(e.RatioMin, 1), ratio(e.RatioMax, 1))
	}
	b.WriteString("\nSpan start+end under RunParallel, per pipeline: `go test -C bench -run '^$' -bench HotPath`.\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("report: write readme block: %w", err)
	}
	return nil
}

// ownRates names the scenarios that offered a load of their own, with
// how much and for how long, as a parenthesis; empty when there are none.
func ownRates(pairs []Pair) string {
	var parts []string
	for _, p := range pairs {
		if sc := p.Scenario; sc.Rate > 0 {
			parts = append(parts, fmt.Sprintf("`%s` at %s spans/s for %s", sc.Name, count(int64(sc.Rate)), sc.Duration))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// durations describes how long the scenarios at the common rate offered
// load.
func durations(pairs []Pair) string {
	var plain, outage time.Duration
	for _, p := range pairs {
		if p.Scenario.Rate > 0 {
			continue
		}
		if p.Scenario.Outage != scenario.Available {
			outage = p.Scenario.Duration
		} else {
			plain = p.Scenario.Duration
		}
	}
	switch {
	case plain == 0:
		return outage.String()
	case outage == 0 || outage == plain:
		return plain.String()
	}
	return fmt.Sprintf("%s (%s for the outages)", plain, outage)
}

// readmeLabel describes a scenario's backend in the README's table.
func readmeLabel(s scenario.Scenario) string {
	switch {
	case s.Outage == scenario.Unavailable:
		return fmt.Sprintf("503 for %s, then healthy", s.OutageFor)
	case s.Outage == scenario.Refusing:
		return fmt.Sprintf("connections refused for %s", s.OutageFor)
	case s.MaxConcurrent > 0:
		return fmt.Sprintf("%d requests at once, %s, 503 beyond", s.MaxConcurrent, s.Latency)
	}
	return fmt.Sprintf("backend latency %s", s.Latency)
}

// readmeTable is the comparison in the README's shorter form.
func readmeTable(pairs []Pair) table {
	t := table{header: []string{
		"scenario", "delivered, stock", "delivered, ours", "ours/stock",
		"p99 `End()`, stock", "p99 `End()`, ours", "CPU per delivered span, stock", "ours",
		"peak heap, stock", "ours", "ours, heap/budget", "ours, limit", "ours, RTT",
	}, left: 1}
	for _, p := range pairs {
		s, o := p.Stock, p.Ours
		t.rows = append(t.rows, []string{
			readmeLabel(p.Scenario),
			cell(s, func(r *scenario.Result) string { return pct(r.DeliveredPct()) }),
			cell(o, func(r *scenario.Result) string { return pct(r.DeliveredPct()) }),
			both(s, o, func(r *scenario.Result) float64 { return float64(r.Delivered) }),
			cell(s, func(r *scenario.Result) string { return dur(r.End.Quantile(0.99)) }),
			cell(o, func(r *scenario.Result) string { return dur(r.End.Quantile(0.99)) }),
			cell(s, perSpan), cell(o, perSpan),
			cell(s, func(r *scenario.Result) string { return mib(r.Usage.PeakLiveHeap) }),
			cell(o, func(r *scenario.Result) string { return mib(r.Usage.PeakLiveHeap) }),
			cell(o, heapOverBudget), cell(o, limits), cell(o, roundTrip),
		})
	}
	return t
}

// findings are the figures worth a sentence, read from the results.
func findings(pairs []Pair) []string {
	var out []string
	// The stock pipeline at the longest latency it ran.
	var far *Pair
	for i, p := range pairs {
		if p.Scenario.Outage == scenario.Available && p.Scenario.MaxConcurrent == 0 && p.Stock != nil &&
			(far == nil || p.Scenario.Latency > far.Scenario.Latency) {
			far = &pairs[i]
		}
	}
	if far != nil && far.Scenario.Latency > 0 {
		s := far.Stock
		out = append(out, fmt.Sprintf("The stock pipeline delivers at most one batch of 512 spans per round trip: "+
			"at %s it delivered %s of %s spans; %s were dropped in the BatchSpanProcessor's queue and reported nowhere.",
			far.Scenario.Latency, count(s.Delivered), count(s.Ended), count(s.Ended-s.Handed)))
	}
	// Ours in the latency scenarios: its own drops, and the queue in front.
	var lat []string
	for _, p := range pairs {
		o := p.Ours
		if o == nil || p.Scenario.Outage != scenario.Available || p.Scenario.MaxConcurrent > 0 {
			continue
		}
		byExporter := "none dropped by the exporter"
		if n := exporterDropTotal(o); n > 0 {
			byExporter = fmt.Sprintf("%s dropped by the exporter (%s)", count(n), exporterDrops(o))
		}
		lat = append(lat, fmt.Sprintf("%s: %s, %s in the BatchSpanProcessor's queue in front of it",
			p.Scenario.Latency, byExporter, count(o.Ended-o.Handed)))
	}
	if len(lat) > 0 {
		out = append(out, "Spans ours did not deliver, by latency: "+strings.Join(lat, "; ")+".")
	}
	// Outages: how soon sending resumed.
	for _, p := range pairs {
		if p.Scenario.Outage == scenario.Available {
			continue
		}
		var parts []string
		for _, r := range p.results() {
			parts = append(parts, fmt.Sprintf("%s %s", r.Pipeline, resumed(r)))
		}
		out = append(out, fmt.Sprintf("%s: sending resumed after the backend recovered in %s.",
			readmeLabel(p.Scenario), strings.Join(parts, ", ")))
	}
	// The largest heap growth against the budget.
	worst, worstName := 0.0, ""
	for _, p := range pairs {
		for _, r := range []*scenario.Result{p.Ours, p.Fixed} {
			if r == nil || r.Watch.Budget <= 0 || r.Usage.PeakLiveHeap < r.Usage.StartLiveHeap {
				continue
			}
			if v := float64(r.Usage.PeakLiveHeap-r.Usage.StartLiveHeap) / float64(r.Watch.Budget); v > worst {
				worst, worstName = v, p.Scenario.Name
			}
		}
	}
	if worstName != "" {
		out = append(out, fmt.Sprintf("The process's live heap rose at most %s of our exporter's memory budget above where it started (%s), "+
			"the BatchSpanProcessor's queue and the receiver included.", ratio(worst, 1), worstName))
	}
	return out
}

// exporterDropTotal is what our exporter dropped, whatever the reason.
func exporterDropTotal(r *scenario.Result) int64 {
	if r.Exporter == nil {
		return r.Handed - r.Delivered
	}
	return r.Exporter.Dropped.Total()
}
