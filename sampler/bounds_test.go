package sampler

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// payload returns n fresh bytes, so that no two spans share their values.
func payload(i, n int) string {
	return strings.Repeat(string(rune('a'+i%26)), n)
}

// heapInUse is the live heap after two collections.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// The byte bound covers everything a held span keeps alive, whatever the
// span's shape: the heap retained by held spans stays within WithMaxBytes
// plus 20%, and the estimate does not undercount it by more than that.
func TestRetainedHeapStaysWithinMaxBytes(t *testing.T) {
	const (
		maxBytes = 4 << 20
		spans    = 1000
		parts    = 32   // payload pieces per span
		partLen  = 1000 // bytes per piece: ~32 KiB per span
	)
	shapes := []struct {
		name string
		opts func(i int) []trace.SpanStartOption
		end  func(s trace.Span, i int)
	}{
		{
			name: "string slice attribute",
			opts: func(i int) []trace.SpanStartOption {
				vals := make([]string, parts)
				for j := range vals {
					vals[j] = payload(i+j, partLen)
				}
				return []trace.SpanStartOption{trace.WithAttributes(attribute.StringSlice("payload", vals))}
			},
		},
		{
			name: "event attributes",
			end: func(s trace.Span, i int) {
				for j := range parts {
					s.AddEvent("e", trace.WithAttributes(attribute.String("payload", payload(i+j, partLen))))
				}
			},
		},
		{
			name: "link attributes",
			opts: func(i int) []trace.SpanStartOption {
				links := make([]trace.Link, parts)
				for j := range links {
					links[j] = trace.Link{
						SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
							TraceID: trace.TraceID{1, byte(j)}, SpanID: trace.SpanID{1}, Remote: true,
						}),
						Attributes: []attribute.KeyValue{attribute.String("payload", payload(i+j, partLen))},
					}
				}
				return []trace.SpanStartOption{trace.WithLinks(links...)}
			},
		},
	}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			clk := clockwork.NewFakeClock()
			keep := ErrorKeeping(nil, withClock(clk), WithRatio(0), WithMaxBytes(maxBytes),
				WithMaxKeptPerSecond(0))
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(keep), sdktrace.WithSpanProcessor(keep))
			defer func() { _ = tp.Shutdown(context.Background()) }()
			tr := tp.Tracer("test")

			for i := range spans {
				var opts []trace.SpanStartOption
				if sh.opts != nil {
					opts = sh.opts(i)
				}
				_, s := tr.Start(context.Background(), "span", opts...)
				if sh.end != nil {
					sh.end(s, i)
				}
				s.End()
			}
			held := heapInUse()
			st := keep.Stats()
			if err := keep.ForceFlush(context.Background()); err != nil {
				t.Fatal(err)
			}
			released := heapInUse()
			retained := int64(held) - int64(released)
			t.Logf("%s: WithMaxBytes %.2f MiB, BytesHeld %.2f MiB, retained %.2f MiB, %d traces held",
				sh.name, mib(maxBytes), mib(st.BytesHeld), mib(retained), st.TracesHeld)
			if st.BytesHeld > maxBytes {
				t.Errorf("BytesHeld %d over WithMaxBytes %d", st.BytesHeld, maxBytes)
			}
			if float64(retained) > 1.2*maxBytes {
				t.Errorf("retained %.2f MiB, more than WithMaxBytes + 20%% (%.2f MiB)", mib(retained), 1.2*mib(maxBytes))
			}
			if float64(retained) > 1.2*float64(st.BytesHeld) {
				t.Errorf("the estimate undercounts: BytesHeld %.2f MiB, retained %.2f MiB", mib(st.BytesHeld), mib(retained))
			}
			runtime.KeepAlive(keep)
		})
	}
}

func mib[T int | int64](n T) float64 { return float64(n) / (1 << 20) }
