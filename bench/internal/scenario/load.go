package scenario

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the instrumentation scope of the generated spans.
const TracerName = "github.com/tracekeeper/tracekeeper/bench"

// Defaults of LoadConfig.
const (
	DefaultGoroutines = 4
	chunk             = 64 // spans ended between two looks at the clock
)

// shapes are the spans the load ends, in turn: HTTP server spans with the
// same eight attributes each and a handful of distinct values.
var shapes = func() [][]trace.SpanStartOption {
	routes := []struct{ method, route string }{
		{"GET", "/api/v1/orders/{id}"},
		{"POST", "/api/v1/orders"},
		{"GET", "/api/v1/catalog/items"},
		{"PUT", "/api/v1/cart/{id}"},
	}
	statuses := []int{200, 200, 200, 201, 404, 500}
	var out [][]trace.SpanStartOption
	for _, r := range routes {
		for _, st := range statuses {
			out = append(out, []trace.SpanStartOption{
				trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(
					attribute.String("http.request.method", r.method),
					attribute.String("http.route", r.route),
					attribute.Int("http.response.status_code", st),
					attribute.String("url.scheme", "https"),
					attribute.String("server.address", "api.example.com"),
					attribute.Int("server.port", 443),
					attribute.String("network.protocol.version", "1.1"),
					attribute.String("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"),
				),
			})
		}
	}
	return out
}()

// names are the span names matching shapes.
var names = func() []string {
	var out []string
	for _, r := range []string{"GET /api/v1/orders/{id}", "POST /api/v1/orders", "GET /api/v1/catalog/items", "PUT /api/v1/cart/{id}"} {
		for range 6 {
			out = append(out, r)
		}
	}
	return out
}()

// StartEnd starts and ends one span of the load's shape. Variant chooses
// among a few names and attribute values; any int will do.
func StartEnd(ctx context.Context, tracer trace.Tracer, variant int) {
	i := uint(variant) % uint(len(shapes))
	_, span := tracer.Start(ctx, names[i], shapes[i]...)
	span.End()
}

// LoadConfig configures Generate.
type LoadConfig struct {
	// Rate is the offered load in spans per second, all goroutines
	// together.
	Rate int
	// Duration is how long the load is offered.
	Duration time.Duration
	// Goroutines is the number of goroutines ending spans; the default is
	// DefaultGoroutines.
	Goroutines int
	// Clock paces the load; nil means the real clock. span.End() durations
	// are always measured with the real clock.
	Clock clockwork.Clock
	// Ended, when not nil, is increased as spans end, so that progress can
	// be watched while the load runs.
	Ended *atomic.Int64
}

// Load is what Generate did.
type Load struct {
	// Offered is the number of spans the schedule asked for: Rate ×
	// Duration.
	Offered int64
	// Ended is the number of spans ended. It falls short of Offered when
	// the machine cannot keep up with the schedule.
	Ended int64
	// Elapsed is how long the load ran.
	Elapsed time.Duration
	// End holds the duration of every span.End() call.
	End Histogram
}

// Generate ends spans from tracer at cfg.Rate per second for cfg.Duration,
// or until ctx is done. Each goroutine keeps to its share of the schedule,
// every millisecond ending the spans that have fallen due; a goroutine
// that falls behind catches up as fast as it can, so a saturated machine
// shows as Ended below Offered rather than as a slower schedule.
func Generate(ctx context.Context, tracer trace.Tracer, cfg LoadConfig) *Load {
	g := cfg.Goroutines
	if g <= 0 {
		g = DefaultGoroutines
	}
	clock := cfg.Clock
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	res := &Load{Offered: int64(float64(cfg.Rate) * cfg.Duration.Seconds())}
	if cfg.Rate <= 0 || cfg.Duration <= 0 {
		return res
	}
	perG := float64(cfg.Rate) / float64(g)
	hists := make([]*Histogram, g)
	var ended atomic.Int64
	var wg sync.WaitGroup
	start := clock.Now()
	for w := range g {
		hists[w] = new(Histogram)
		wg.Add(1)
		go func(h *Histogram, variant int) {
			defer wg.Done()
			n := generate(ctx, tracer, clock, start, cfg.Duration, perG, h, variant, cfg.Ended)
			ended.Add(n)
		}(hists[w], w*7)
	}
	wg.Wait()
	res.Elapsed = clock.Since(start)
	res.Ended = ended.Load()
	for _, h := range hists {
		res.End.Merge(h)
	}
	return res
}

// generate is one goroutine's share of the load; it returns the number of
// spans it ended.
func generate(ctx context.Context, tracer trace.Tracer, clock clockwork.Clock, start time.Time,
	dur time.Duration, rate float64, h *Histogram, variant int, live *atomic.Int64) int64 {
	tick := clock.NewTicker(time.Millisecond)
	defer tick.Stop()
	var done int64
	for {
		el := clock.Since(start)
		if el >= dur {
			return done
		}
		due := int64(rate*el.Seconds()) - done
		for due > 0 {
			n := min(due, chunk)
			for range n {
				i := uint(variant) % uint(len(shapes))
				variant++
				_, span := tracer.Start(ctx, names[i], shapes[i]...)
				t0 := time.Now()
				span.End()
				h.Record(time.Since(t0))
			}
			done += n
			due -= n
			if live != nil {
				live.Add(n)
			}
			if clock.Since(start) >= dur || ctx.Err() != nil {
				return done
			}
		}
		select {
		case <-tick.Chan():
		case <-ctx.Done():
			return done
		}
	}
}
