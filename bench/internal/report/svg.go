package report

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/tracekeeper/tracekeeper/bench/internal/scenario"
)

// Chart geometry and colours.
const (
	chartW      = 1000
	chartH      = 440
	panelTop    = 112
	panelH      = 250
	panelW      = 400
	stockColour = "#9aa0a6"
	oursColour  = "#1a73e8"
)

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")

func esc(s string) string { return xmlEscaper.Replace(s) }

// series is one panel of the chart: a value per scenario per pipeline.
type series struct {
	title string
	value func(*scenario.Result) float64
	label func(float64) string
	top   float64 // the axis' maximum; 0 means computed from the values
}

// SVG draws two grouped bar charts side by side, stock beside ours for
// each scenario: the share of ended spans delivered, and the p99 latency of
// span.End(). It is plain SVG 1.1 with no script or external reference.
func SVG(w io.Writer, results []*scenario.Result, meta Meta) error {
	pairs := Pairs(results)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif">`+"\n",
		chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="30" font-size="19" font-weight="bold" text-anchor="middle">%s</text>`+"\n",
		chartW/2, esc("Stock batcher + otlptracehttp vs tracekeeper exporter"))
	legend(&b, chartW/2-310, 58)

	panel(&b, 70, pairs, series{
		title: "Delivered, % of spans ended (higher is better)",
		value: func(r *scenario.Result) float64 { return r.DeliveredPct() },
		label: barPct,
		top:   100,
	})
	panel(&b, 70+panelW+110, pairs, series{
		title: "p99 span.End() latency, µs (lower is better)",
		value: func(r *scenario.Result) float64 { return float64(r.End.Quantile(0.99)) / float64(time.Microsecond) },
		label: func(v float64) string { return sig3(v) },
	})

	var foot []string
	if meta.Rate > 0 {
		foot = append(foot, fmt.Sprintf("offered %s spans/s, 8 attributes each", count(int64(meta.Rate))))
	}
	if meta.Machine != "" {
		foot = append(foot, meta.Machine)
	}
	if !meta.Date.IsZero() {
		foot = append(foot, meta.Date.UTC().Format("2006-01-02"))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" fill="#5f6368" text-anchor="middle">%s</text>`+"\n",
		chartW/2, chartH-12, esc(strings.Join(foot, " · ")))
	b.WriteString("</svg>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("report: write svg: %w", err)
	}
	return nil
}

func legend(b *strings.Builder, x, y int) {
	for i, it := range []struct{ colour, name string }{
		{stockColour, "stock: WithBatcher(otlptracehttp.New(...))"},
		{oursColour, "ours: WithBatcher(exporter.New(...))"},
	} {
		lx := x + i*330
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/>`+"\n", lx, y-10, it.colour)
		fmt.Fprintf(b, `<text x="%d" y="%d" font-size="13">%s</text>`+"\n", lx+18, y, esc(it.name))
	}
}

// panel draws one grouped bar chart with its left edge at x0.
func panel(b *strings.Builder, x0 int, pairs []Pair, s series) {
	y0 := panelTop + panelH // the axis line
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="14" font-weight="bold" text-anchor="middle">%s</text>`+"\n",
		x0+panelW/2, panelTop-20, esc(s.title))

	top := s.top
	if top == 0 {
		for _, p := range pairs {
			for _, r := range []*scenario.Result{p.Stock, p.Ours} {
				if r != nil {
					top = math.Max(top, s.value(r))
				}
			}
		}
		top = niceCeil(top)
	}
	const ticks = 5
	for i := 0; i <= ticks; i++ {
		v := top * float64(i) / ticks
		y := float64(y0) - float64(panelH)*float64(i)/ticks
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e0e0e0"/>`+"\n", x0, y, x0+panelW, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" font-size="11" fill="#5f6368" text-anchor="end">%s</text>`+"\n",
			x0-6, y+4, esc(trimFloat(v)))
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#5f6368"/>`+"\n", x0, y0, x0+panelW, y0)

	if len(pairs) == 0 {
		return
	}
	gw := float64(panelW) / float64(len(pairs))
	bw := math.Min(gw*0.34, 34)
	for i, p := range pairs {
		cx := float64(x0) + gw*(float64(i)+0.5)
		for j, r := range []*scenario.Result{p.Stock, p.Ours} {
			if r == nil {
				continue
			}
			colour := stockColour
			x := cx - bw - 1
			if j == 1 {
				colour, x = oursColour, cx+1
			}
			v := s.value(r)
			h := 0.0
			if top > 0 {
				h = math.Min(v/top, 1) * float64(panelH)
			}
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
				x, float64(y0)-h, bw, h, colour, esc(fmt.Sprintf("%s, %s: %s", p.Scenario.Name, r.Pipeline, s.label(v))))
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="9" text-anchor="middle">%s</text>`+"\n",
				x+bw/2, float64(y0)-h-4, esc(s.label(v)))
		}
		for k, line := range shortLabel(p.Scenario) {
			fmt.Fprintf(b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle">%s</text>`+"\n",
				cx, y0+17+k*14, esc(line))
		}
	}
}

// shortLabel names a scenario under its bars, in two lines.
func shortLabel(s scenario.Scenario) [2]string {
	if s.Outage != scenario.Available {
		return [2]string{s.Outage.String(), "for " + s.OutageFor.String()}
	}
	if s.MaxConcurrent > 0 {
		return [2]string{"overload", fmt.Sprintf("%d at once", s.MaxConcurrent)}
	}
	return [2]string{"latency", "+" + s.Latency.String()}
}

// barPct labels a bar of the delivered panel: as short as possible, but
// keeping the digits that tell 99.9% from 100%.
func barPct(v float64) string {
	switch {
	case v >= 100:
		return "100%"
	case v >= 99.5:
		return fmt.Sprintf("%.2f%%", v)
	case v >= 10:
		return fmt.Sprintf("%.1f%%", v)
	default:
		return fmt.Sprintf("%.2f%%", v)
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// trimFloat prints an axis value without needless decimals.
func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
