package sampler

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// ruleHead samples spans by name, as a user's rule sampler may, and
// attributes its decision.
type ruleHead struct{ name string }

func (h ruleHead) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	ts := trace.SpanContextFromContext(p.ParentContext).TraceState()
	if p.Name == h.name {
		return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample, Tracestate: ts,
			Attributes: []attribute.KeyValue{attribute.String("rule", h.name)}}
	}
	return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: ts}
}

func (h ruleHead) Description() string { return "rule{" + h.name + "}" }

// thresholdHead stands in for a consistent probability sampler (the SDK's
// experimental one, or a jaegerremote probabilistic strategy with
// threshold propagation): it writes ot=th into the tracestate whatever it
// decides, and samples the traces whose first ID byte is even.
type thresholdHead struct{}

func (thresholdHead) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	ts := trace.SpanContextFromContext(p.ParentContext).TraceState()
	ts, _ = ts.Insert("ot", "th:8")
	d := sdktrace.Drop
	if p.TraceID[0]%2 == 0 {
		d = sdktrace.RecordAndSample
	}
	return sdktrace.SamplingResult{Decision: d, Tracestate: ts}
}

func (thresholdHead) Description() string { return "threshold{th:8}" }

func TestHeadOption(t *testing.T) {
	tests := []struct {
		name       string
		head       sdktrace.Sampler
		rootName   string
		wantHead   bool   // the trace is sampled at the head
		wantTS     string // tracestate exported
		wantAttr   string // an attribute the head wrote, kept on head-sampled spans
		rootTrace  trace.TraceID
		errorChild bool
	}{
		{name: "rule head samples by name", head: ruleHead{"GET /checkout"}, rootName: "GET /checkout",
			wantHead: true, wantAttr: "rule"},
		{name: "rule head drops, the tail keeps the error", head: ruleHead{"GET /checkout"}, rootName: "GET /health",
			errorChild: true},
		{name: "threshold head samples, th is kept", head: thresholdHead{}, rootTrace: trace.TraceID{2, 15: 1},
			wantHead: true, wantTS: "ot=th:8"},
		{name: "threshold head drops, th is erased on rescue", head: thresholdHead{}, rootTrace: trace.TraceID{3, 15: 1},
			errorChild: true, wantTS: ""},
		{name: "always on", head: sdktrace.AlwaysSample(), wantHead: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, WithHead(tt.head), WithRatio(1)) // the head wins over the ratio
			tid := tt.rootTrace
			if !tid.IsValid() {
				tid = trace.TraceID{4, 15: 1}
			}
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(h.keep), sdktrace.WithSpanProcessor(h.keep),
				sdktrace.WithIDGenerator(&fixedIDs{tid: tid}))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			tr := tp.Tracer("test")
			name := tt.rootName
			if name == "" {
				name = "root"
			}
			rctx, root := tr.Start(context.Background(), name)
			for i := range 2 {
				_, c := tr.Start(rctx, "child") // follows the local root, whatever the head says of its name
				if tt.errorChild && i == 1 {
					c.SetStatus(codes.Error, "boom")
				}
				c.End()
			}
			root.End()
			if tt.wantHead {
				if got := len(h.rec.Ended()); got != 3 {
					t.Fatalf("head-sampled: %d spans exported at once, want 3", got)
				}
			}
			h.advance(testDelay)
			got := h.rec.Ended()
			if len(got) != 3 {
				t.Fatalf("exported %d spans, want 3", len(got))
			}
			want := KeptByError
			if tt.wantHead {
				want = KeptByHead
			}
			for _, s := range got {
				if kb := keptBy(s); kb != want {
					t.Errorf("span %q kept_by %q, want %q", s.Name(), kb, want)
				}
				if ts := s.SpanContext().TraceState().String(); ts != tt.wantTS {
					t.Errorf("span %q tracestate %q, want %q", s.Name(), ts, tt.wantTS)
				}
			}
			if tt.wantAttr != "" {
				found := false
				for _, kv := range got[len(got)-1].Attributes() {
					found = found || kv.Key == attribute.Key(tt.wantAttr)
				}
				if !found {
					t.Errorf("the head's attribute %q was lost", tt.wantAttr)
				}
			}
			if d := h.keep.Description(); d == "" {
				t.Error("no description")
			}
		})
	}
}

// fixedIDs gives every new root the same trace ID.
type fixedIDs struct {
	tid  trace.TraceID
	next atomic.Uint64
}

func (g *fixedIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	return g.tid, g.NewSpanID(ctx, g.tid)
}

func (g *fixedIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	var sid trace.SpanID
	binary.BigEndian.PutUint64(sid[:], g.next.Add(1))
	return sid
}

// In dry run every recorded span goes downstream, sampled, marked with the
// decision the sampler would have taken.
func TestDryRun(t *testing.T) {
	h := newHarness(t, WithDryRun(true), WithHead(ruleHead{"GET /checkout"}),
		WithMaxKeptPerSecond(1), WithMaxKeptBurst(1))
	start := func(name string, errAt int) (context.Context, trace.Span) {
		ctx, root := h.tr.Start(context.Background(), name)
		for i := range 2 {
			_, c := h.tr.Start(ctx, "child")
			if i == errAt {
				c.SetStatus(codes.Error, "boom")
			}
			c.End()
		}
		return ctx, root
	}
	_, head := start("GET /checkout", -1)
	head.End()
	if got := len(h.rec.Ended()); got != 3 {
		t.Fatalf("head-sampled spans: %d handed on at once, want 3", got)
	}
	_, failing := start("GET /a", 0)
	failing.End()
	h.advance(testDelay)             // decided first, it takes the cap's one token
	_, limited := start("GET /b", 0) // over the cap of one
	limited.End()
	cleanCtx, clean := start("GET /c", -1)
	_, straggler := h.tr.Start(cleanCtx, "straggler")
	clean.End()
	h.advance(testDelay)
	straggler.End() // a late span follows, marked too

	want := map[trace.TraceID]struct {
		keep     bool
		decision string
	}{
		head.SpanContext().TraceID():    {true, KeptByHead},
		failing.SpanContext().TraceID(): {true, KeptByError},
		limited.SpanContext().TraceID(): {false, DecisionRateLimited},
		clean.SpanContext().TraceID():   {false, DecisionReleased},
	}
	got := h.rec.Ended()
	if len(got) != 13 {
		t.Fatalf("dry run handed on %d spans, want all 13", len(got))
	}
	for _, s := range got {
		w := want[s.SpanContext().TraceID()]
		var keep, decision attribute.Value
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case WouldKeepKey:
				keep = kv.Value
			case DecisionKey:
				decision = kv.Value
			}
		}
		if keep.Type() != attribute.BOOL || keep.AsBool() != w.keep || decision.AsString() != w.decision {
			t.Errorf("span %q: would_keep=%v decision=%q, want %v %q", s.Name(), keep.Emit(), decision.AsString(), w.keep, w.decision)
		}
		if !s.SpanContext().IsSampled() {
			t.Errorf("span %q handed on unsampled", s.Name())
		}
	}
	st := h.keep.Stats()
	if st.KeptByError != 1 || st.RateLimited != 1 || st.Released != 1 || st.LateSpansReleased != 1 {
		t.Errorf("dry run counts what would have been done: %+v", st)
	}
}

func TestTracerProviderOptionsWireBothSides(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	rec := tracetest.NewSpanRecorder()
	keep := ErrorKeeping(rec, WithRatio(0), WithLogger(zap.New(core)), WithMeterProvider(noopmetric.NewMeterProvider()))
	tp := sdktrace.NewTracerProvider(keep.TracerProviderOptions()...)
	ctx, root := tp.Tracer("test").Start(context.Background(), "root")
	_, c := tp.Tracer("test").Start(ctx, "child")
	c.SetStatus(codes.Error, "boom")
	c.End()
	root.End()
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(rec.Ended()); got != 2 {
		t.Errorf("exported %d spans, want the failing trace's 2", got)
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Errorf("warnings with both sides wired: %v", logs.All())
	}
}

// stalledCore is a zap core whose writes block until released.
type stalledCore struct {
	zapcore.LevelEnabler
	writing chan struct{} // closed at the first write
	once    *sync.Once
	release chan struct{}
}

func (c stalledCore) With([]zapcore.Field) zapcore.Core { return c }
func (c stalledCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(e, c)
}
func (c stalledCore) Write(zapcore.Entry, []zapcore.Field) error {
	c.once.Do(func() { close(c.writing) })
	<-c.release
	return nil
}
func (c stalledCore) Sync() error { return nil }

// The report of a wiring mistake, made on a span's path, does not wait on
// the logger; Shutdown waits for it only as long as its ctx allows.
func TestWiringReportDoesNotWaitOnTheLogger(t *testing.T) {
	core := stalledCore{LevelEnabler: zapcore.DebugLevel, writing: make(chan struct{}), once: &sync.Once{}, release: make(chan struct{})}
	defer close(core.release)
	keep := ErrorKeeping(nil, WithRatio(0), WithLogger(zap.New(core)), WithMeterProvider(noopmetric.NewMeterProvider()))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(keep))
	started := make(chan struct{})
	go func() {
		defer close(started)
		for range 2 * wiringGrace { // would stop at the report if it waited
			_, s := tp.Tracer("test").Start(context.Background(), "s")
			s.End()
		}
	}()
	<-core.writing // the report is being written, and blocks
	select {
	case <-started:
	case <-time.After(30 * time.Second): // a hang, not a speed
		t.Fatal("starting spans is stuck behind the logger")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := keep.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the ctx's error while the logger blocks", err)
	}
	_ = tp.Shutdown(context.Background())
}

// Registering only one side of the ErrorKeeper is reported, once.
func TestHalfWiringIsReportedOnce(t *testing.T) {
	tests := []struct {
		name string
		opts func(k *ErrorKeeper) []sdktrace.TracerProviderOption
		want string
	}{
		{"sampler only", func(k *ErrorKeeper) []sdktrace.TracerProviderOption {
			return []sdktrace.TracerProviderOption{sdktrace.WithSampler(k)}
		}, "not one of its span processors"},
		{"processor only", func(k *ErrorKeeper) []sdktrace.TracerProviderOption {
			return []sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(k)}
		}, "whose sampler it is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zap.WarnLevel)
			keep := ErrorKeeping(nil, WithRatio(0), WithLogger(zap.New(core)), WithMeterProvider(noopmetric.NewMeterProvider()))
			tp := sdktrace.NewTracerProvider(tt.opts(keep)...)
			for range 2 * wiringGrace {
				_, s := tp.Tracer("test").Start(context.Background(), "s")
				s.End()
			}
			// The report is written by a goroutine of its own, which
			// Shutdown waits for.
			_ = tp.Shutdown(context.Background())
			if err := keep.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			all := logs.All()
			if len(all) != 1 || !strings.Contains(all[0].Message, tt.want) {
				t.Errorf("warnings = %v, want one saying %q", all, tt.want)
			}
		})
	}
}
