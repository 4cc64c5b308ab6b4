package sampler

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// payload returns n fresh bytes, so that no two spans share their values.
func payload(i, n int) string {
	return strings.Repeat(string(rune('a'+i%26)), n)
}

// cut returns a short string that points into a fresh 8 KiB one, as a
// substring of a request body would.
func cut(i int) string { return payload(i, 8<<10)[:16] }

// truncating are the SDK's default span limits with attribute values
// shortened to 256 bytes.
var truncating = func() sdktrace.SpanLimits {
	l := sdktrace.NewSpanLimits()
	l.AttributeValueLengthLimit = 256
	return l
}()

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
		name   string
		limits *sdktrace.SpanLimits                // the provider's, when not the defaults
		ctx    func(i int) context.Context         // the parent context, when not Background
		opts   func(i int) []trace.SpanStartOption // options of the span's start
		end    func(s trace.Span, i int)           // called before the span ends
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
		{
			// The SDK shortens a value over the limit by slicing it: what
			// it keeps points into the whole value.
			name:   "string shortened by the SDK",
			limits: &truncating,
			opts: func(i int) []trace.SpanStartOption {
				return []trace.SpanStartOption{trace.WithAttributes(attribute.String("payload", payload(i, parts*partLen)))}
			},
		},
		{
			name:   "string slice shortened by the SDK",
			limits: &truncating,
			opts: func(i int) []trace.SpanStartOption {
				vals := make([]string, 4)
				for j := range vals {
					vals[j] = payload(i+j, parts*partLen/4)
				}
				return []trace.SpanStartOption{trace.WithAttributes(attribute.StringSlice("payload", vals))}
			},
		},
		{
			// A user's substring (a request body's first bytes, say)
			// points into the whole of what it was cut from.
			name: "substring values",
			opts: func(i int) []trace.SpanStartOption {
				return []trace.SpanStartOption{trace.WithAttributes(
					attribute.String("payload", cut(i)),
					attribute.StringSlice("payloads", []string{cut(i + 1), cut(i + 2)}),
					attribute.Map("nested", attribute.String("payload", cut(i+3))),
					attribute.Slice("list", attribute.StringValue(cut(i+4))),
				)}
			},
		},
		{
			name: "substring name, key, status, event and link",
			opts: func(i int) []trace.SpanStartOption {
				return []trace.SpanStartOption{
					trace.WithAttributes(attribute.Int(cut(i), i)),
					trace.WithLinks(trace.Link{
						SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
							TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, Remote: true,
						}),
						Attributes: []attribute.KeyValue{attribute.String("payload", cut(i+1))},
					}),
				}
			},
			end: func(s trace.Span, i int) {
				s.SetName(cut(i + 2))
				s.SetStatus(codes.Error, cut(i+3))
				s.AddEvent(cut(i+4), trace.WithAttributes(attribute.String("payload", cut(i+5))))
			},
		},
		{
			// A tracestate parsed from a header keeps the header's
			// string: here one member among a run of empty ones.
			name: "trace state from a larger header",
			ctx: func(i int) context.Context {
				ts, err := trace.ParseTraceState("vendor=" + payload(i, 8) + strings.Repeat(",", parts*partLen))
				if err != nil {
					panic(err)
				}
				return trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
					TraceID: trace.TraceID{byte(i), byte(i >> 8), 1}, SpanID: trace.SpanID{1}, Remote: true, TraceState: ts,
				}))
			},
		},
	}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			clk := clockwork.NewFakeClock()
			keep := ErrorKeeping(nil, withClock(clk), WithRatio(0), WithMaxBytes(maxBytes),
				WithMaxKeptPerSecond(0))
			tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithSampler(keep), sdktrace.WithSpanProcessor(keep)}
			if sh.limits != nil {
				tpOpts = append(tpOpts, sdktrace.WithSpanLimits(*sh.limits))
			}
			tp := sdktrace.NewTracerProvider(tpOpts...)
			defer func() { _ = tp.Shutdown(context.Background()) }()
			tr := tp.Tracer("test")

			for i := range spans {
				ctx := context.Background()
				if sh.ctx != nil {
					ctx = sh.ctx(i)
				}
				var opts []trace.SpanStartOption
				if sh.opts != nil {
					opts = sh.opts(i)
				}
				_, s := tr.Start(ctx, "span", opts...)
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

// The byte limit bounds the total, not a share per shard: one trace of a
// fifth of the limit is held whole while the rest leave room, and kept
// with the error in its last span.
func TestOneLargeTraceIsKeptWhole(t *testing.T) {
	const (
		maxBytes = 4 << 20
		children = 100
		spanLen  = 8 << 10 // 100 × 8 KiB ≈ 20% of the limit
	)
	h := newHarness(t, WithMaxBytes(maxBytes))
	for i := range 50 { // small traces around it, in every shard
		_, r := h.trace(context.Background(), 1, -1)
		r.SetAttributes(attribute.Int("i", i))
		r.End()
	}
	ctx, root := h.tr.Start(context.Background(), "big")
	for i := range children {
		_, c := h.tr.Start(ctx, "child", trace.WithAttributes(attribute.String("payload", payload(i, spanLen))))
		if i == children-1 {
			c.SetStatus(codes.Error, "the last child fails")
		}
		c.End()
	}
	root.End()
	st := h.keep.Stats()
	if float64(st.BytesHeld) < 0.2*maxBytes {
		t.Fatalf("the large trace is not a fifth of the limit: %d of %d bytes held", st.BytesHeld, maxBytes)
	}
	h.advance(testDelay)

	kept := 0
	for _, s := range h.rec.Ended() {
		if s.SpanContext().TraceID() == root.SpanContext().TraceID() {
			kept++
		}
	}
	if kept != children+1 {
		t.Errorf("exported %d of the large trace's %d spans", kept, children+1)
	}
	if st := h.keep.Stats(); st.EvictedMaxBytes != 0 || st.KeptByError != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// WithMaxTraces bounds the total: every slot can be used, and when a new
// trace needs one the oldest held trace of any shard is decided early.
func TestMaxTracesBoundsTheTotal(t *testing.T) {
	const maxTraces = 1024
	h := newHarness(t, WithMaxTraces(maxTraces), WithMaxWait(time.Hour), WithDecisionDelay(time.Hour))
	var first trace.Span
	for i := range maxTraces {
		_, r := h.trace(context.Background(), 0, -1)
		if i == 0 {
			first = r
			r.SetStatus(codes.Error, "oldest")
		}
		r.End()
		h.clock.Advance(time.Millisecond) // every trace a different age
	}
	if st := h.keep.Stats(); st.TracesHeld != maxTraces || st.EvictedMaxTraces != 0 {
		t.Fatalf("with %d traces: held %d, evicted %d", maxTraces, st.TracesHeld, st.EvictedMaxTraces)
	}
	_, r := h.trace(context.Background(), 0, -1)
	r.End()
	st := h.keep.Stats()
	if st.TracesHeld != maxTraces || st.EvictedMaxTraces != 1 {
		t.Fatalf("one more: held %d, evicted %d", st.TracesHeld, st.EvictedMaxTraces)
	}
	got := h.rec.Ended()
	if len(got) != 1 || got[0].SpanContext().TraceID() != first.SpanContext().TraceID() {
		t.Errorf("the early decision did not take the oldest trace: %d spans exported", len(got))
	}
}

// An early decision applies the keep rules to what is held: a trace that
// already shows an error, its latency or a predicate match is kept, and
// its later spans follow as late spans.
func TestEarlyDecisionsKeepWhatTheySee(t *testing.T) {
	vip := attribute.Bool("vip", true)
	tests := []struct {
		name   string
		opts   []Option
		mark   func(s trace.Span) // makes the first child qualify
		force  func(h *harness)   // forces the early decision
		reason string
		count  func(Stats) uint64
	}{
		{
			name: "max traces", opts: []Option{WithMaxTraces(64)},
			force: func(h *harness) {
				for range 64 {
					_, r := h.trace(context.Background(), 0, -1)
					r.End()
				}
			},
			reason: KeptByError, count: func(s Stats) uint64 { return s.EvictedMaxTraces },
		},
		{
			name: "max bytes", opts: []Option{WithMaxBytes(64 << 10)},
			force: func(h *harness) {
				h.clock.Advance(time.Millisecond) // the held trace is the older one
				_, r := h.tr.Start(context.Background(), "big", trace.WithAttributes(attribute.String("p", payload(0, 64<<10))))
				r.End()
			},
			reason: KeptByError, count: func(s Stats) uint64 { return s.EvictedMaxBytes },
		},
		{
			name: "span limit", opts: []Option{WithMaxSpansPerTrace(2)},
			force:  func(*harness) {}, // the trace's own children reach it
			reason: KeptByError, count: func(s Stats) uint64 { return s.EvictedMaxSpans },
		},
		{
			name: "max wait", opts: []Option{WithMaxWait(time.Second)},
			force:  func(h *harness) { h.advance(time.Second) },
			reason: KeptByError, count: func(s Stats) uint64 { return s.ExpiredMaxWait },
		},
		{
			name: "max wait, latency", opts: []Option{WithMaxWait(time.Second), WithLatencyThreshold(time.Second)},
			mark: func(s trace.Span) {
				s.End(trace.WithTimestamp(time.Now().Add(2 * time.Second)))
			},
			force:  func(h *harness) { h.advance(time.Second) },
			reason: KeptByLatency, count: func(s Stats) uint64 { return s.ExpiredMaxWait },
		},
		{
			name: "max bytes, predicate",
			opts: []Option{WithMaxBytes(64 << 10), WithPredicate(func(s sdktrace.ReadOnlySpan) bool {
				for _, kv := range s.Attributes() {
					if kv == vip {
						return true
					}
				}
				return false
			})},
			mark: func(s trace.Span) { s.SetAttributes(vip); s.End() },
			force: func(h *harness) {
				h.clock.Advance(time.Millisecond) // the held trace is the older one
				_, r := h.tr.Start(context.Background(), "big", trace.WithAttributes(attribute.String("p", payload(0, 64<<10))))
				r.End()
			},
			reason: KeptByPredicate, count: func(s Stats) uint64 { return s.EvictedMaxBytes },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.opts...)
			ctx, root := h.tr.Start(context.Background(), "root")
			_, first := h.tr.Start(ctx, "first")
			if tt.mark != nil {
				tt.mark(first)
			} else {
				first.SetStatus(codes.Error, "boom")
				first.End()
			}
			_, second := h.tr.Start(ctx, "second")
			second.End()
			tt.force(h)
			if got := tt.count(h.keep.Stats()); got == 0 {
				t.Fatalf("no early decision: %+v", h.keep.Stats())
			}
			_, late := h.tr.Start(ctx, "late")
			late.End()
			root.End()

			var names []string
			for _, s := range h.rec.Ended() {
				if s.SpanContext().TraceID() != root.SpanContext().TraceID() {
					continue
				}
				names = append(names, s.Name())
				if kb := keptBy(s); kb != tt.reason {
					t.Errorf("span %q kept_by %q, want %q", s.Name(), kb, tt.reason)
				}
			}
			if len(names) != 4 {
				t.Errorf("exported %v, want first, second, late and root", names)
			}
			if st := h.keep.Stats(); st.LateSpansKept < 1 {
				t.Errorf("later spans did not follow as late spans: %+v", st)
			}
		})
	}
}
