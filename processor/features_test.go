package processor

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

var wirings = []struct {
	name string
	new  func(*testing.T, ...Option) *pipeline
}{{"wrapping", newWrapping}, {"plain", newPlain}}

// kindSpan starts and ends one span of the given kind and returns what the
// recorder received.
func (p *pipeline) kindSpan(kind trace.SpanKind, name string, start []attribute.KeyValue, late ...attribute.KeyValue) sdktrace.ReadOnlySpan {
	_, s := p.tp.Tracer("test").Start(context.Background(), name, trace.WithSpanKind(kind), trace.WithAttributes(start...))
	s.SetAttributes(late...)
	s.End()
	ended := p.rec.Ended()
	return ended[len(ended)-1]
}

func TestGuardURLAttributes(t *testing.T) {
	tests := []struct{ key, in, want string }{
		{"url.full", "http://127.0.0.1:8080/users/123", "http://127.0.0.1:8080/users/{id}"},
		{"url.full", "https://[2001:db8::7]:8443/orders/550e8400-e29b-41d4-a716-446655440000?page=2", "https://[2001:db8::7]:8443/orders/{id}?page={id}"},
		{"http.url", "http://10.0.0.12/healthz", "http://10.0.0.12/healthz"},
		{"url.path", "/users/123/", "/users/{id}/"},
	}
	for _, w := range wirings {
		t.Run(w.name, func(t *testing.T) {
			p := w.new(t)
			for _, tt := range tests {
				s := p.span("op", []attribute.KeyValue{attribute.String(tt.key, tt.in)})
				if v, _ := attrOf(s, attribute.Key(tt.key)); v.AsString() != tt.want {
					t.Errorf("%s=%q became %q, want %q", tt.key, tt.in, v.AsString(), tt.want)
				}
			}
		})
	}
}

func TestGuardHTTPRouteSpanNames(t *testing.T) {
	method := func(m string) attribute.KeyValue { return attribute.String("http.request.method", m) }
	route := func(r string) attribute.KeyValue { return attribute.String("http.route", r) }
	tests := []struct {
		name  string
		kind  trace.SpanKind
		span  string
		start []attribute.KeyValue
		late  []attribute.KeyValue // seen by the wrapping wiring only
		want  string               // both wirings
		late2 string               // the wrapping wiring, when late is set
	}{
		{"route at start", trace.SpanKindServer, "GET", []attribute.KeyValue{method("GET"), route("/users/{id}")}, nil, "GET /users/{id}", ""},
		{"route set late", trace.SpanKindServer, "GET", []attribute.KeyValue{method("GET")}, []attribute.KeyValue{route("/orders/{id}")}, "GET", "GET /orders/{id}"},
		{"already named", trace.SpanKindServer, "POST /carts", []attribute.KeyValue{method("POST"), route("/carts")}, nil, "POST /carts", ""},
		{"no method", trace.SpanKindServer, "handler", []attribute.KeyValue{route("/x")}, nil, "HTTP /x", ""},
		{"other method", trace.SpanKindServer, "_OTHER", []attribute.KeyValue{method("_OTHER"), route("/x")}, nil, "HTTP /x", ""},
		{"empty route falls back to the normalized name", trace.SpanKindServer, "GET /users/17", []attribute.KeyValue{method("GET"), route("")}, nil, "GET /users/{id}", ""},
		{"no route falls back to the normalized name", trace.SpanKindServer, "GET /users/18", []attribute.KeyValue{method("GET")}, nil, "GET /users/{id}", ""},
		{"client span", trace.SpanKindClient, "GET", []attribute.KeyValue{method("GET"), route("/users/{id}")}, nil, "GET", ""},
		{"route with an id is normalized", trace.SpanKindServer, "GET", []attribute.KeyValue{method("GET"), route("/users/42")}, nil, "GET /users/{id}", ""},
	}
	for _, w := range wirings {
		t.Run(w.name, func(t *testing.T) {
			p := w.new(t, WithHTTPRouteSpanNames(true))
			for _, tt := range tests {
				want := tt.want
				if w.name == "wrapping" && tt.late2 != "" {
					want = tt.late2
				}
				if s := p.kindSpan(tt.kind, tt.span, tt.start, tt.late...); s.Name() != want {
					t.Errorf("%s: name %q, want %q", tt.name, s.Name(), want)
				}
			}
			off := w.new(t)
			s := off.kindSpan(trace.SpanKindServer, "GET", []attribute.KeyValue{method("GET"), route("/users/{id}")})
			if s.Name() != "GET" {
				t.Errorf("renamed without the option: %q", s.Name())
			}
		})
	}
}

func TestRouteNamesDoNotAllocateOnceSeen(t *testing.T) {
	var r routeNames
	attrs := []attribute.KeyValue{attribute.String("http.request.method", "GET"), attribute.String("http.route", "/users/{id}")}
	first := r.name(trace.SpanKindServer, attrs, "GET")
	if first != "GET /users/{id}" {
		t.Fatalf("name = %q", first)
	}
	if n := testing.AllocsPerRun(100, func() { r.name(trace.SpanKindServer, attrs, "GET") }); n != 0 {
		t.Fatalf("%v allocations for a name seen before", n)
	}
	for i := range maxRouteNames + 10 {
		a := []attribute.KeyValue{attribute.String("http.route", "/r/"+strconv.Itoa(i))}
		if got, want := r.name(trace.SpanKindServer, a, "x"), "HTTP /r/"+strconv.Itoa(i); got != want {
			t.Fatalf("name = %q, want %q", got, want)
		}
	}
	if n := len(*r.m.Load()); n != maxRouteNames {
		t.Fatalf("kept %d names, want the bound %d", n, maxRouteNames)
	}
}

// TestRouteNamesKeepShortNamesOnly checks that names longer than
// maxRouteName are built for every span and never kept, and that a name of
// exactly maxRouteName bytes is kept.
func TestRouteNamesKeepShortNamesOnly(t *testing.T) {
	var r routeNames
	kept := func() int {
		if m := r.m.Load(); m != nil {
			return len(*m)
		}
		return 0
	}
	method := attribute.String("http.request.method", "GET")
	for _, n := range []int{maxRouteName + 1, 4 * maxRouteName, 64 << 10} {
		route := "/" + strings.Repeat("r", n-len("GET /"))
		a := []attribute.KeyValue{method, attribute.String("http.route", route)}
		if got := r.name(trace.SpanKindServer, a, "GET"); got != "GET "+route {
			t.Fatalf("%d-byte name: got %d bytes %.40q", n, len(got), got)
		}
		if k := kept(); k != 0 {
			t.Fatalf("%d-byte name: %d names kept, want 0", n, k)
		}
	}
	route := "/" + strings.Repeat("r", maxRouteName-len("GET /"))
	a := []attribute.KeyValue{method, attribute.String("http.route", route)}
	if got := r.name(trace.SpanKindServer, a, "GET"); got != "GET "+route {
		t.Fatalf("name = %q", got)
	}
	if k := kept(); k != 1 {
		t.Fatalf("%d names kept, want the %d-byte one", k, maxRouteName)
	}
}

// TestGuardResetForgetsRouteNames checks that a reset forgets the route
// span names kept, as it forgets everything else, so that routes which
// come after it are kept in their place.
func TestGuardResetForgetsRouteNames(t *testing.T) {
	clk := clockwork.NewFakeClock()
	method := attribute.String("http.request.method", "GET")
	for _, w := range wirings {
		t.Run(w.name, func(t *testing.T) {
			p := w.new(t, WithHTTPRouteSpanNames(true), WithResetInterval(time.Minute), withClock(clk))
			kept := func() []string {
				var names []string
				if m := p.guard.state.Load().routes.m.Load(); m != nil {
					for k := range *m {
						names = append(names, k)
					}
				}
				return names
			}
			p.kindSpan(trace.SpanKindServer, "GET", []attribute.KeyValue{method, attribute.String("http.route", "/before")})
			if got := kept(); len(got) != 1 || got[0] != "GET /before" {
				t.Fatalf("before the reset: kept %q", got)
			}
			clk.Advance(time.Minute)
			s := p.kindSpan(trace.SpanKindServer, "GET", []attribute.KeyValue{method, attribute.String("http.route", "/after")})
			if s.Name() != "GET /after" {
				t.Fatalf("after the reset: name %q", s.Name())
			}
			if got := kept(); len(got) != 1 || got[0] != "GET /after" {
				t.Fatalf("after the reset: kept %q, want only the name built since", got)
			}
			if r := p.guard.Stats().Resets; r != 1 {
				t.Fatalf("%d resets, want 1", r)
			}
		})
	}
}

func wouldOverflow(s sdktrace.ReadOnlySpan) bool {
	v, ok := attrOf(s, WouldOverflowKey)
	return ok && v.AsBool()
}

func TestGuardReportOnly(t *testing.T) {
	for _, w := range wirings {
		t.Run(w.name, func(t *testing.T) {
			p := w.new(t, WithReportOnly(true), WithKeyLimit("enduser.id", 1), WithSpanNameLimit(1), WithHTTPRouteSpanNames(true))
			s := p.span("op", []attribute.KeyValue{attribute.String("enduser.id", "a"), attribute.String("url.path", "/users/42")})
			if wouldOverflow(s) || marked(s) {
				t.Fatal("a span under the limits is marked")
			}
			if v, _ := attrOf(s, "url.path"); v.AsString() != "/users/42" {
				t.Fatalf("url.path rewritten to %q in report-only mode", v.AsString())
			}
			s = p.span("other op", []attribute.KeyValue{attribute.String("enduser.id", "b")})
			if v, _ := attrOf(s, "enduser.id"); v.AsString() != "b" || s.Name() != "other op" {
				t.Fatalf("report-only rewrote: enduser.id=%q name=%q", v.AsString(), s.Name())
			}
			if !wouldOverflow(s) || marked(s) {
				t.Fatalf("would-overflow %v, overflow %v; want only the would-overflow marker", wouldOverflow(s), marked(s))
			}
			s = p.kindSpan(trace.SpanKindServer, "GET", []attribute.KeyValue{attribute.String("http.route", "/r")})
			if s.Name() != "GET" {
				t.Fatalf("report-only renamed the span to %q", s.Name())
			}
			st := p.guard.Stats()
			// Over the limits: enduser.id=b, and the names "other op"
			// and "HTTP /r".
			if st.ReplacedOverLimit != 3 || st.MarkedSpans != 2 || st.Normalized != 1 {
				t.Fatalf("stats = %+v", st)
			}
		})
	}
}

func TestGuardTopOffenders(t *testing.T) {
	p := newWrapping(t, WithValueLimit(1), WithSpanNameLimit(1))
	for i := range 30 {
		attrs := []attribute.KeyValue{attribute.Int("busy", i)}
		if i%3 == 0 {
			attrs = append(attrs, attribute.Int("quiet", i))
		}
		for k := range TopOffendersLen + 2 {
			if i == k {
				attrs = append(attrs, attribute.Int("rare"+strconv.Itoa(k), 1))
			}
			if i == k+1 {
				attrs = append(attrs, attribute.Int("rare"+strconv.Itoa(k), 2))
			}
		}
		p.span([]string{"even", "odd"}[i%2], attrs)
	}
	top := p.guard.Stats().TopOffenders
	if len(top) != TopOffendersLen {
		t.Fatalf("%d offenders, want %d: %+v", len(top), TopOffendersLen, top)
	}
	want := []Offender{
		{Target: "attribute", Key: "busy", Reason: reasonValueLimit, Replaced: 29},
		{Target: "span.name", Key: "test", Reason: reasonValueLimit, Replaced: 15},
		{Target: "attribute", Key: "quiet", Reason: reasonValueLimit, Replaced: 9},
		{Target: "attribute", Key: "rare0", Reason: reasonValueLimit, Replaced: 1},
	}
	for i, o := range want {
		if top[i] != o {
			t.Errorf("offender %d = %+v, want %+v", i, top[i], o)
		}
	}
}

// blockingCore is a zapcore.Core whose writes wait until release is
// closed.
type blockingCore struct {
	zapcore.Core
	release chan struct{}
	writing chan struct{}
	once    sync.Once
}

func (c *blockingCore) Enabled(zapcore.Level) bool { return true }

func (c *blockingCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(e, c)
}

func (c *blockingCore) Write(zapcore.Entry, []zapcore.Field) error {
	c.once.Do(func() { close(c.writing) })
	<-c.release
	return nil
}

func TestGuardLogsOffenders(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clk := clockwork.NewFakeClock()
	core, logs := observer.New(zap.WarnLevel)
	const every = 10 * time.Second
	p := newWrapping(t, WithLogger(zap.New(core)), WithLogInterval(every), withClock(clk), WithKeyLimit("enduser.id", 1))
	tick := func() {
		t.Helper()
		if err := clk.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		clk.Advance(every)
		// The reporter has logged, if it had to, once it waits again.
		if err := clk.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}

	tick()
	if logs.Len() != 0 {
		t.Fatalf("logged with nothing replaced: %v", logs.All())
	}
	for i := range 5 {
		p.span("op", []attribute.KeyValue{attribute.String("enduser.id", "u"+strconv.Itoa(i))})
	}
	if logs.Len() != 0 {
		t.Fatal("logged before the interval elapsed")
	}
	tick()
	if logs.Len() != 1 {
		t.Fatalf("%d lines after one interval, want 1", logs.Len())
	}
	e := logs.All()[0]
	fields := e.ContextMap()
	if e.Level != zap.WarnLevel || fields["replaced"] != uint64(4) || fields["replaced_total"] != uint64(4) {
		t.Fatalf("line = %s %v", e.Message, fields)
	}
	top, _ := fields["top_offenders"].([]any)
	if len(top) != 1 || top[0].(map[string]any)["key"] != "enduser.id" || top[0].(map[string]any)["replaced"] != uint64(4) {
		t.Fatalf("top_offenders = %#v", fields["top_offenders"])
	}
	tick()
	if logs.Len() != 1 {
		t.Fatal("logged again with nothing new replaced")
	}
	p.span("op", []attribute.KeyValue{attribute.String("enduser.id", "late")})
	if err := p.guard.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 2 || logs.All()[1].ContextMap()["replaced"] != uint64(1) {
		t.Fatalf("Shutdown did not log the last replacement: %v", logs.All())
	}
}

func TestGuardShutdownHonoursContextWhileLogging(t *testing.T) {
	clk := clockwork.NewFakeClock()
	core := &blockingCore{Core: zapcore.NewNopCore(), release: make(chan struct{}), writing: make(chan struct{})}
	g := CardinalityGuard(WithLogger(zap.New(core)), withClock(clk), WithKeyLimit("k", 1), WithDownstream(sdktrace.NewSimpleSpanProcessor(nil)))
	st := g.state.Load()
	for _, v := range []string{"a", "b"} {
		kv := attribute.String("k", v)
		g.guardAttr(st, &kv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-core.writing; cancel() }()
	// The final report blocks in the logger; Shutdown returns with ctx.
	if err := g.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown = %v", err)
	}
	close(core.release) // goleak checks that the goroutine then ends
	if err := g.log.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestGuardUntrackedScopeNames checks that a scope past WithMaxKeys keeps
// the names other scopes admitted and loses the others.
func TestGuardUntrackedScopeNames(t *testing.T) {
	p := newWrapping(t, WithMaxKeys(1))
	if s := p.scopedSpan("a", "known", nil); s.Name() != "known" {
		t.Fatalf("tracked scope: %q", s.Name())
	}
	if s := p.scopedSpan("b", "known", nil); s.Name() != "known" || marked(s) {
		t.Fatalf("untracked scope, name admitted elsewhere: %q, marked %v", s.Name(), marked(s))
	}
	if s := p.scopedSpan("b", "new", nil); s.Name() != OverflowValue || !marked(s) {
		t.Fatalf("untracked scope, new name: %q, marked %v", s.Name(), marked(s))
	}
	if st := p.guard.Stats(); st.ReplacedUntracked != 1 || st.Scopes != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

// With a custom normalizer, an untracked scope's name passes once
// normalized to a name another scope admitted; in both wirings.
func TestGuardUntrackedScopeNamesNormalized(t *testing.T) {
	lower := WithNormalizer(func(key, v string) (string, bool) {
		if l := strings.ToLower(v); key == "" && l != v {
			return l, true
		}
		return v, false
	})
	for _, wiring := range []struct {
		name string
		new  func(*testing.T, ...Option) *pipeline
	}{{"wrapping", newWrapping}, {"plain", newPlain}} {
		t.Run(wiring.name, func(t *testing.T) {
			p := wiring.new(t, WithMaxKeys(1), lower)
			if s := p.scopedSpan("a", "op", nil); s.Name() != "op" {
				t.Fatalf("tracked scope: %q", s.Name())
			}
			if s := p.scopedSpan("b", "op", nil); s.Name() != "op" || marked(s) {
				t.Fatalf("untracked scope, name admitted elsewhere: %q, marked %v", s.Name(), marked(s))
			}
			if s := p.scopedSpan("b", "OP", nil); s.Name() != "op" || marked(s) {
				t.Fatalf("untracked scope, name normalized to one admitted elsewhere: %q, marked %v", s.Name(), marked(s))
			}
			if s := p.scopedSpan("b", "new", nil); s.Name() != OverflowValue || !marked(s) {
				t.Fatalf("untracked scope, new name: %q, marked %v", s.Name(), marked(s))
			}
			if st := p.guard.Stats(); st.ReplacedUntracked != 1 || st.Normalized != 1 {
				t.Fatalf("stats = %+v", st)
			}
		})
	}
}

// A value equal to OverflowValue passes uncounted and unmarked on a key
// or in a scope the Guard does not track, as on any other.
func TestGuardOverflowValueUntracked(t *testing.T) {
	for _, wiring := range []struct {
		name string
		new  func(*testing.T, ...Option) *pipeline
	}{{"wrapping", newWrapping}, {"plain", newPlain}} {
		t.Run(wiring.name, func(t *testing.T) {
			p := wiring.new(t, WithMaxKeys(1))
			p.scopedSpan("a", "op", []attribute.KeyValue{attribute.String("k1", "v")})
			s := p.scopedSpan("b", OverflowValue, []attribute.KeyValue{attribute.String("k1", "v"), attribute.String("k2", OverflowValue)})
			if marked(s) || s.Name() != OverflowValue {
				t.Fatalf("span %q marked %v, attributes %v", s.Name(), marked(s), s.Attributes())
			}
			if v, _ := attrOf(s, "k2"); v.AsString() != OverflowValue {
				t.Fatalf("k2 = %v", v)
			}
			if st := p.guard.Stats(); st.ReplacedUntracked != 0 || st.MarkedSpans != 0 {
				t.Fatalf("stats = %+v", st)
			}
			s = p.scopedSpan("a", "op", []attribute.KeyValue{attribute.String("k3", "x")})
			if v, _ := attrOf(s, "k3"); v.AsString() != OverflowValue || !marked(s) {
				t.Fatalf("an untracked key's own value: k3 = %v, marked %v", v, marked(s))
			}
			if st := p.guard.Stats(); st.ReplacedUntracked != 1 || st.MarkedSpans != 1 {
				t.Fatalf("stats = %+v", st)
			}
		})
	}
}
