package processor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// pipeline is a TracerProvider with a Guard and a recorder of what the
// exporting side would receive.
type pipeline struct {
	guard *Guard
	rec   *tracetest.SpanRecorder
	tp    *sdktrace.TracerProvider
}

// newWrapping wires the Guard around a recorder, as the README recommends.
func newWrapping(t *testing.T, opts ...Option) *pipeline {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	opts = append([]Option{WithMeterProvider(noop.NewMeterProvider())}, opts...)
	g := CardinalityGuard(append(opts, WithDownstream(rec))...)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(g))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &pipeline{guard: g, rec: rec, tp: tp}
}

// newPlain registers the Guard next to a recorder.
func newPlain(t *testing.T, opts ...Option) *pipeline {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	opts = append([]Option{WithMeterProvider(noop.NewMeterProvider())}, opts...)
	g := CardinalityGuard(opts...)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(g), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &pipeline{guard: g, rec: rec, tp: tp}
}

// span starts and ends one span of scope "test" and returns what the
// recorder received.
func (p *pipeline) span(name string, start []attribute.KeyValue, late ...attribute.KeyValue) sdktrace.ReadOnlySpan {
	return p.scopedSpan("test", name, start, late...)
}

func (p *pipeline) scopedSpan(scope, name string, start []attribute.KeyValue, late ...attribute.KeyValue) sdktrace.ReadOnlySpan {
	_, s := p.tp.Tracer(scope).Start(context.Background(), name, trace.WithAttributes(start...))
	s.SetAttributes(late...)
	s.End()
	ended := p.rec.Ended()
	return ended[len(ended)-1]
}

func attrOf(s sdktrace.ReadOnlySpan, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func marked(s sdktrace.ReadOnlySpan) bool {
	v, ok := attrOf(s, OverflowKey)
	return ok && v.Type() == attribute.BOOL && v.AsBool()
}

func TestGuardValueLimit(t *testing.T) {
	for _, wiring := range []struct {
		name string
		new  func(*testing.T, ...Option) *pipeline
	}{{"wrapping", newWrapping}, {"plain", newPlain}} {
		t.Run(wiring.name, func(t *testing.T) {
			p := wiring.new(t, WithValueLimit(3))
			for i := range 3 {
				s := p.span("op", []attribute.KeyValue{attribute.String("user", "u"+strconv.Itoa(i))})
				if v, _ := attrOf(s, "user"); v.AsString() != "u"+strconv.Itoa(i) || marked(s) {
					t.Fatalf("value %d under the limit changed: %v, marked %v", i, v.Emit(), marked(s))
				}
			}
			s := p.span("op", []attribute.KeyValue{attribute.String("user", "u3"), attribute.String("other", "x")})
			if v, _ := attrOf(s, "user"); v.AsString() != OverflowValue {
				t.Fatalf("value over the limit = %q, want %q", v.AsString(), OverflowValue)
			}
			if !marked(s) {
				t.Fatal("span with an overflow is not marked")
			}
			if v, _ := attrOf(s, "other"); v.AsString() != "x" {
				t.Fatalf("other key changed to %q", v.AsString())
			}
			// Admitted values keep passing.
			s = p.span("op", []attribute.KeyValue{attribute.String("user", "u1")})
			if v, _ := attrOf(s, "user"); v.AsString() != "u1" || marked(s) {
				t.Fatalf("admitted value changed to %q", v.AsString())
			}
			st := p.guard.Stats()
			if st.ReplacedOverLimit != 1 || st.MarkedSpans != 1 || st.Keys != 2 {
				t.Fatalf("stats = %+v", st)
			}
		})
	}
}

func TestGuardValueTypes(t *testing.T) {
	p := newWrapping(t, WithValueLimit(1))
	tests := []struct {
		name        string
		first, next attribute.KeyValue
		replaced    bool
	}{
		{"int", attribute.Int("n", 1), attribute.Int("n", 2), true},
		{"float", attribute.Float64("f", 1.5), attribute.Float64("f", 2.5), true},
		{"bool", attribute.Bool("b", true), attribute.Bool("b", false), false},
		{"string slice", attribute.StringSlice("ss", []string{"a"}), attribute.StringSlice("ss", []string{"b"}), true},
		{"int slice", attribute.Int64Slice("is", []int64{1}), attribute.Int64Slice("is", []int64{1, 2}), true},
		{"same int", attribute.Int("m", 7), attribute.Int("m", 7), false},
		{"same slice", attribute.StringSlice("s2", []string{"a", "b"}), attribute.StringSlice("s2", []string{"a", "b"}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.span("op", []attribute.KeyValue{tt.first})
			s := p.span("op", []attribute.KeyValue{tt.next})
			v, _ := attrOf(s, tt.next.Key)
			if got := v.Type() == attribute.STRING && v.AsString() == OverflowValue; got != tt.replaced {
				t.Fatalf("second value %s replaced = %v, want %v", tt.next.Value.Emit(), got, tt.replaced)
			}
		})
	}
}

func TestGuardWrappingCoversLateAttributesAndName(t *testing.T) {
	p := newWrapping(t, WithKeyLimit("enduser.id", 1))
	p.span("op", nil, attribute.String("enduser.id", "a"))
	s := p.span("op", nil, attribute.String("enduser.id", "b"), attribute.String("url.path", "/users/42"))
	if v, _ := attrOf(s, "enduser.id"); v.AsString() != OverflowValue {
		t.Fatalf("late attribute = %q, want %q", v.AsString(), OverflowValue)
	}
	if v, _ := attrOf(s, "url.path"); v.AsString() != "/users/{id}" {
		t.Fatalf("late url.path = %q, want normalized", v.AsString())
	}
	// A name changed after start is guarded too.
	_, sp := p.tp.Tracer("test").Start(context.Background(), "start")
	sp.SetName("GET /orders/123")
	sp.End()
	ended := p.rec.Ended()
	if got := ended[len(ended)-1].Name(); got != "GET /orders/{id}" {
		t.Fatalf("renamed span = %q", got)
	}
}

func TestGuardPlainCoversStartOnly(t *testing.T) {
	p := newPlain(t, WithKeyLimit("enduser.id", 1))
	s := p.span("GET /users/7", []attribute.KeyValue{attribute.String("url.path", "/users/7")},
		attribute.String("http.route", "/users/8"))
	if s.Name() != "GET /users/{id}" {
		t.Fatalf("name = %q, want normalized at start", s.Name())
	}
	if v, _ := attrOf(s, "url.path"); v.AsString() != "/users/{id}" {
		t.Fatalf("start attribute = %q, want normalized", v.AsString())
	}
	if v, _ := attrOf(s, "http.route"); v.AsString() != "/users/8" {
		t.Fatalf("late attribute = %q: the plain wiring does not see it", v.AsString())
	}
	p.span("op", []attribute.KeyValue{attribute.String("enduser.id", "a")})
	s = p.span("op", []attribute.KeyValue{attribute.String("enduser.id", "b")})
	if v, _ := attrOf(s, "enduser.id"); v.AsString() != OverflowValue || !marked(s) {
		t.Fatalf("start attribute over the limit = %q, marked %v", v.AsString(), marked(s))
	}
}

func TestGuardPassesUnchangedSpanThrough(t *testing.T) {
	p := newWrapping(t)
	s := p.span("GET /users/{id}", []attribute.KeyValue{attribute.String("http.route", "/users/{id}")})
	if _, ok := s.(*guardedSpan); ok {
		t.Fatal("unchanged span was wrapped in a view")
	}
	s = p.span("GET /users/1", nil)
	if _, ok := s.(*guardedSpan); !ok {
		t.Fatal("changed span was not wrapped")
	}
}

// TestGuardSpanNamesPerScope checks that each scope's limit bounds the
// new names it brings, and that a name admitted in one scope passes in
// every scope.
// TestGuardSpanNamesPerScope checks that a scope's limit counts the names
// it brings and that a name admitted in one scope passes in every other
// without counting there, with and without a custom normalizer (which
// changes nothing here).
func TestGuardSpanNamesPerScope(t *testing.T) {
	same := func(_, v string) (string, bool) { return v, false }
	for _, w := range wirings {
		for _, custom := range []bool{false, true} {
			name := w.name
			opts := []Option{WithSpanNameLimit(2)}
			if custom {
				name += "/custom-normalizer"
				opts = append(opts, WithNormalizer(same))
			}
			t.Run(name, func(t *testing.T) { testSpanNamesPerScope(t, w.new(t, opts...)) })
		}
	}
}

func testSpanNamesPerScope(t *testing.T, p *pipeline) {
	steps := []struct{ scope, name, want string }{
		{"a", "one", "one"},
		{"a", "two", "two"},
		{"a", "three", OverflowValue},
		{"b", "one", "one"}, // admitted in a: passes, not counted in b
		{"b", "three", "three"},
		{"b", "four", "four"},
		{"b", "five", OverflowValue},
		{"a", "one", "one"},
		{"a", "four", "four"}, // admitted in b
	}
	for _, st := range steps {
		s := p.scopedSpan(st.scope, st.name, nil)
		if s.Name() != st.want || marked(s) != (st.want == OverflowValue) {
			t.Fatalf("scope %s name %s = %q, marked %v; want %q", st.scope, st.name, s.Name(), marked(s), st.want)
		}
	}
	if st := p.guard.Stats(); st.Scopes != 2 || st.Values != 4 || st.ReplacedOverLimit != 2 {
		t.Fatalf("stats = %+v", st)
	}
}

// TestGuardSpanNamesOfManyScopes checks the same beyond the first few
// thousand names: scope a admits 5000 names, scope b uses them all and
// then brings 5000 of its own, and every span keeps its name.
func TestGuardSpanNamesOfManyScopes(t *testing.T) {
	const n = 5000
	for _, w := range wirings {
		t.Run(w.name, func(t *testing.T) {
			p := w.new(t, WithSpanNameLimit(n))
			tr := func(scope string) trace.Tracer { return p.tp.Tracer(scope) }
			end := func(scope, name string) {
				_, s := tr(scope).Start(context.Background(), name)
				s.End()
			}
			for i := range n {
				end("a", "op "+letters(i))
			}
			for i := range n {
				end("b", "op "+letters(i))
			}
			for i := range n {
				end("b", "own "+letters(i))
			}
			for _, s := range p.rec.Ended() {
				if s.Name() == OverflowValue {
					t.Fatalf("a name was replaced: %+v", p.guard.Stats())
				}
			}
			if st := p.guard.Stats(); st.Values != 2*n || st.ReplacedOverLimit != 0 {
				t.Fatalf("stats = %+v, want %d names counted once each", st, 2*n)
			}
		})
	}
}

func TestGuardNormalizesBeforeCounting(t *testing.T) {
	p := newWrapping(t, WithKeyLimit("url.path", 1))
	for i := range 50 {
		s := p.span("op", []attribute.KeyValue{attribute.String("url.path", "/users/"+strconv.Itoa(1000+i)+"/orders")})
		if v, _ := attrOf(s, "url.path"); v.AsString() != "/users/{id}/orders" || marked(s) {
			t.Fatalf("url.path = %q, marked %v", v.AsString(), marked(s))
		}
	}
	if st := p.guard.Stats(); st.Normalized != 50 || st.ReplacedOverLimit != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestGuardNormalizerOptions(t *testing.T) {
	email := func(key, v string) (string, bool) {
		if key == "enduser.email" {
			if i := strings.IndexByte(v, '@'); i > 0 {
				return "{user}" + v[i:], true
			}
		}
		return v, false
	}
	tests := []struct {
		name    string
		opts    []Option
		span    string
		attrs   []attribute.KeyValue
		key     attribute.Key
		want    string
		wantSpn string
	}{
		{"builtin off", []Option{WithBuiltinNormalizer(false)}, "GET /u/1",
			[]attribute.KeyValue{attribute.String("url.path", "/u/1")}, "url.path", "/u/1", "GET /u/1"},
		{"other keys untouched", nil, "op",
			[]attribute.KeyValue{attribute.String("db.query.text", "select 1")}, "db.query.text", "select 1", "op"},
		{"added key", []Option{WithNormalizedKeys("messaging.destination.name", "")}, "op",
			[]attribute.KeyValue{attribute.String("messaging.destination.name", "reply-12345")}, "messaging.destination.name", "reply-{id}", "op"},
		{"custom", []Option{WithNormalizer(email), WithNormalizer(nil)}, "op",
			[]attribute.KeyValue{attribute.String("enduser.email", "ann@example.com")}, "enduser.email", "{user}@example.com", "op"},
		{"custom sees names with empty key", []Option{WithNormalizer(func(k, v string) (string, bool) {
			if k == "" {
				return strings.ToUpper(v), true
			}
			return v, false
		})}, "op", nil, "", "", "OP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newWrapping(t, tt.opts...)
			s := p.span(tt.span, tt.attrs)
			if s.Name() != tt.wantSpn {
				t.Fatalf("name = %q, want %q", s.Name(), tt.wantSpn)
			}
			if tt.key != "" {
				if v, _ := attrOf(s, tt.key); v.AsString() != tt.want {
					t.Fatalf("%s = %q, want %q", tt.key, v.AsString(), tt.want)
				}
			}
		})
	}
}

func TestGuardExemptKeys(t *testing.T) {
	p := newWrapping(t, WithValueLimit(1), WithExemptKeys("trace.note", ""), WithMaxKeys(1))
	for i := range 10 {
		s := p.span("op", []attribute.KeyValue{attribute.String("trace.note", strconv.Itoa(i))})
		if v, _ := attrOf(s, "trace.note"); v.AsString() != strconv.Itoa(i) {
			t.Fatalf("exempt value changed to %q", v.AsString())
		}
	}
	if st := p.guard.Stats(); st.Keys != 0 {
		t.Fatalf("exempt key counted: %+v", st)
	}
	// The marker itself is exempt, so a second guard in the chain keeps it.
	s := p.span("op", []attribute.KeyValue{OverflowKey.Bool(false), attribute.String("k", "a")})
	if marked(s) {
		t.Fatal("marker set without an overflow")
	}
	s = p.span("op", []attribute.KeyValue{OverflowKey.Bool(false), attribute.String("k", "b")})
	if !marked(s) {
		t.Fatal("existing false marker not set to true")
	}
	n := 0
	for _, kv := range s.Attributes() {
		if kv.Key == OverflowKey {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("marker appears %d times", n)
	}
}

func TestGuardMaxKeys(t *testing.T) {
	p := newWrapping(t, WithMaxKeys(2))
	s := p.span("op", []attribute.KeyValue{attribute.String("a", "1"), attribute.String("b", "1"), attribute.String("c", "1")})
	if v, _ := attrOf(s, "c"); v.AsString() != OverflowValue || !marked(s) {
		t.Fatalf("third key = %q, want replaced", v.AsString())
	}
	if v, _ := attrOf(s, "a"); v.AsString() != "1" {
		t.Fatalf("tracked key changed to %q", v.AsString())
	}
	long := attribute.Key(strings.Repeat("k", maxKeyLength+1))
	p2 := newWrapping(t)
	s = p2.span("op", []attribute.KeyValue{long.String("v")})
	if v, _ := attrOf(s, long); v.AsString() != OverflowValue {
		t.Fatalf("over-long key value = %q, want replaced", v.AsString())
	}
	if st := p.guard.Stats(); st.ReplacedUntracked != 1 || st.Keys != 2 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestGuardBadInput(t *testing.T) {
	p := newWrapping(t, WithValueLimit(2))
	huge := strings.Repeat("x", 1<<20)
	tests := []struct {
		name string
		kv   attribute.KeyValue
		want string
	}{
		{"huge value", attribute.String("h", huge), huge},
		{"invalid utf-8", attribute.String("u", "a\xffb"), "a\xffb"},
		{"invalid utf-8 path", attribute.String("url.path", "/\xff/12"), "/\xff/{id}"},
		{"overflow value itself", attribute.String("o", OverflowValue), OverflowValue},
		{"empty value", attribute.String("e", ""), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := p.span("op", []attribute.KeyValue{tt.kv})
			if v, _ := attrOf(s, tt.kv.Key); v.AsString() != tt.want {
				t.Fatalf("value = %.40q, want %.40q", v.AsString(), tt.want)
			}
		})
	}
	// An empty key never reaches a processor through the SDK; called
	// directly the guard leaves it alone.
	kv := attribute.String("", "v")
	if _, v := p.guard.guardAttr(p.guard.state.Load(), &kv); v != pass {
		t.Fatalf("empty key verdict = %v", v)
	}
	// Odd option values keep the defaults.
	g := CardinalityGuard(nil, WithValueLimit(-1), WithKeyLimit("", 5), WithKeyLimit("k", 0),
		WithSpanNameLimit(0), WithMaxKeys(-3), WithResetInterval(-time.Second), WithDownstream(nil),
		WithMeterProvider(nil), WithNormalizer(nil), withClock(nil), WithValueLimit(1<<40))
	c := g.cfg
	if c.valueLimit != maxLimit || c.spanNameLimit != DefaultSpanNameLimit || c.maxKeys != DefaultMaxKeys ||
		c.reset != 0 || c.next != nil || len(c.keyLimits) != 0 || len(c.normalizers) != 0 || c.clock == nil {
		t.Fatalf("odd options changed the config: %+v", c)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestGuardResetInterval(t *testing.T) {
	clk := clockwork.NewFakeClock()
	p := newWrapping(t, WithValueLimit(1), WithResetInterval(time.Minute), withClock(clk))
	p.span("op", []attribute.KeyValue{attribute.String("k", "a")})
	if v, _ := attrOf(p.span("op", []attribute.KeyValue{attribute.String("k", "b")}), "k"); v.AsString() != OverflowValue {
		t.Fatalf("before reset: %q", v.AsString())
	}
	clk.Advance(59 * time.Second)
	if v, _ := attrOf(p.span("op", []attribute.KeyValue{attribute.String("k", "b")}), "k"); v.AsString() != OverflowValue {
		t.Fatalf("before the interval: %q", v.AsString())
	}
	clk.Advance(time.Second)
	if v, _ := attrOf(p.span("op", []attribute.KeyValue{attribute.String("k", "b")}), "k"); v.AsString() != "b" {
		t.Fatalf("after reset: %q, want admitted", v.AsString())
	}
	if v, _ := attrOf(p.span("op", []attribute.KeyValue{attribute.String("k", "a")}), "k"); v.AsString() != OverflowValue {
		t.Fatalf("after reset the old value is forgotten: %q", v.AsString())
	}
	st := p.guard.Stats()
	if st.Resets != 1 || st.ReplacedOverLimit != 3 || st.Values != 2 {
		t.Fatalf("stats = %+v", st)
	}
}

// recorderWithErrors is a downstream whose flush and shutdown fail.
type recorderWithErrors struct {
	*tracetest.SpanRecorder
	shutdowns int
}

var errDownstream = errors.New("downstream failed")

func (r *recorderWithErrors) ForceFlush(context.Context) error { return errDownstream }
func (r *recorderWithErrors) Shutdown(context.Context) error {
	r.shutdowns++
	return errDownstream
}

func TestGuardLifecycle(t *testing.T) {
	down := &recorderWithErrors{SpanRecorder: tracetest.NewSpanRecorder()}
	g := CardinalityGuard(WithMeterProvider(noop.NewMeterProvider()), WithDownstream(down))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(g))
	_, s := tp.Tracer("t").Start(context.Background(), "op")
	s.End()
	if len(down.Started()) != 1 || len(down.Ended()) != 1 {
		t.Fatalf("downstream saw %d starts, %d ends", len(down.Started()), len(down.Ended()))
	}
	err := g.ForceFlush(context.Background())
	if !errors.Is(err, errDownstream) || !strings.HasPrefix(err.Error(), "processor: ") {
		t.Fatalf("ForceFlush error = %v", err)
	}
	err = g.Shutdown(context.Background())
	if !errors.Is(err, errDownstream) || !strings.HasPrefix(err.Error(), "processor: ") {
		t.Fatalf("Shutdown error = %v", err)
	}
	if err := g.Shutdown(context.Background()); err != nil || down.shutdowns != 1 {
		t.Fatalf("second Shutdown = %v, downstream shut down %d times", err, down.shutdowns)
	}
	// After shutdown the guard ignores spans.
	_, s = tp.Tracer("t").Start(context.Background(), "late")
	s.End()
	if len(down.Ended()) != 1 || g.ForceFlush(context.Background()) != nil {
		t.Fatal("guard forwarded after shutdown")
	}
	_ = tp.Shutdown(context.Background())

	// Without a downstream, flush and shutdown succeed and do nothing.
	g = CardinalityGuard(WithMeterProvider(noop.NewMeterProvider()))
	if g.ForceFlush(context.Background()) != nil || g.Shutdown(context.Background()) != nil {
		t.Fatal("plain guard flush or shutdown failed")
	}
}

// FuzzGuard feeds arbitrary keys, values, scopes and names to the guard
// and checks that it never panics, that a replaced value is OverflowValue,
// that a rewritten URL-like value is a template of the built-in normalizer,
// that a value once admitted keeps passing, and that the hot path passes
// only what the full check passes.
func FuzzGuard(f *testing.F) {
	f.Add("url.path", "/users/123", "scope", "GET /users/123")
	f.Add("", "", "", "")
	f.Add("k", "\xff\xfe", strings.Repeat("s", 300), OverflowValue)
	f.Add(string(OverflowKey), "x", "s", "n")
	g := CardinalityGuard(WithMeterProvider(noop.NewMeterProvider()), WithValueLimit(4), WithSpanNameLimit(4), WithMaxKeys(8))
	f.Fuzz(func(t *testing.T, key, value, scope, name string) {
		st := g.state.Load()
		kv := attribute.String(key, value)
		nv, v := g.guardAttr(st, &kv)
		switch v {
		case replaced:
			if nv != OverflowValue {
				t.Fatalf("replaced with %q", nv)
			}
		case rewritten:
			if again, changed := normalizeIDs(nv); changed {
				t.Fatalf("rewritten %q to %q, which normalizes again to %q", value, nv, again)
			}
		}
		if v != replaced {
			if _, v2 := g.guardAttr(st, &kv); v2 == replaced {
				t.Fatalf("%q=%q admitted, then replaced", key, value)
			}
		}
		if g.admitted(st, []attribute.KeyValue{kv}) == 1 {
			if _, v2 := g.guardAttr(st, &kv); v2 != pass {
				t.Fatalf("%q=%q passed the fast path, then got verdict %d", key, value, v2)
			}
		}
		nn, nvd := g.guardName(st, scopeName(scope).span(), name)
		if nvd == replaced && nn != OverflowValue {
			t.Fatalf("name replaced with %q", nn)
		}
		if nvd != replaced {
			if _, v2 := g.guardName(st, scopeName(scope).span(), name); v2 == replaced {
				t.Fatalf("name %q admitted, then replaced", name)
			}
		}
	})
}

// scopeName is a span of which guardName reads only the scope.
type scopeName string

func (s scopeName) span() sdktrace.ReadOnlySpan { return scopedSpan{name: string(s)} }

type scopedSpan struct {
	sdktrace.ReadOnlySpan
	name string
}

func (s scopedSpan) InstrumentationScope() instrumentation.Scope {
	return instrumentation.Scope{Name: s.name}
}

// endedSpan returns a span of scope "test" as the SDK hands it to OnEnd,
// without any processor having seen it.
func endedSpan(t *testing.T, name string, attrs ...attribute.KeyValue) sdktrace.ReadOnlySpan {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	_, s := tp.Tracer("test").Start(context.Background(), name, trace.WithAttributes(attrs...))
	s.End()
	return rec.Ended()[0]
}

// TestGuardFastPathAgrees checks the hot path against the full check: an
// attribute that admitted lets pass is passed by guardAttr too, and in the
// steady state admitted decides about every value type it handles, whether
// it reads values in place or, as when attribute.Value's layout changes,
// through their methods.
func TestGuardFastPathAgrees(t *testing.T) {
	for _, inPlace := range []bool{true, false} {
		t.Run(map[bool]string{true: "in place", false: "methods"}[inPlace], func(t *testing.T) {
			defer func(was bool) { valuesInPlace = was }(valuesInPlace)
			valuesInPlace = inPlace
			testGuardFastPathAgrees(t)
		})
	}
}

func testGuardFastPathAgrees(t *testing.T) {
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", "GET"),
		attribute.String("http.route", "/users/{id}"),
		attribute.String("url.path", "/users/42"),
		attribute.Int("http.response.status_code", 200),
		attribute.Float64("ratio", 0.25),
		attribute.Bool("ok", true),
		attribute.StringSlice("tags", []string{"a", "b"}),
		attribute.String("enduser.id", "u-1"),
		attribute.String("enduser.id", "u-2"),
		attribute.String("exempt.key", "anything"),
		attribute.String("k", OverflowValue),
		attribute.String("", "empty key"),
	}
	upper := func(key, v string) (string, bool) {
		if key == "tenant" {
			return strings.ToUpper(v), v != strings.ToUpper(v)
		}
		return v, false
	}
	tests := []struct {
		name string
		opts []Option
		// fast lists the attributes admitted must pass once the values
		// have been seen.
		fast []string
	}{
		{"defaults", nil, []string{"http.request.method", "http.route", "http.response.status_code", "ratio", "ok", "exempt.key"}},
		{"exempt", []Option{WithExemptKeys("exempt.key")}, []string{"http.request.method", "http.route", "http.response.status_code", "ratio", "ok", "exempt.key"}},
		{"key limit", []Option{WithKeyLimit("enduser.id", 1)}, []string{"http.request.method", "http.route", "http.response.status_code", "ratio", "ok"}},
		{"custom normalizer", []Option{WithNormalizer(upper)}, []string{"http.response.status_code", "ratio", "ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := CardinalityGuard(append([]Option{WithMeterProvider(noop.NewMeterProvider())}, tt.opts...)...)
			st := g.state.Load()
			for round := range 3 {
				for i := range attrs {
					kv := attrs[i]
					fast := g.admitted(st, attrs[i:i+1]) == 1
					if _, v := g.guardAttr(st, &kv); fast && v != pass {
						t.Fatalf("round %d: %s=%s passed the fast path, verdict %d", round, kv.Key, kv.Value.Emit(), v)
					}
					if round > 0 && slices.Contains(tt.fast, string(kv.Key)) && !fast {
						t.Fatalf("round %d: %s=%s missed the fast path", round, kv.Key, kv.Value.Emit())
					}
				}
			}
			// A span whose attributes all take the fast path is decided
			// in one call.
			var steady []attribute.KeyValue
			for _, kv := range attrs {
				if slices.Contains(tt.fast, string(kv.Key)) {
					steady = append(steady, kv)
				}
			}
			if n := g.admitted(st, steady); n != len(steady) {
				t.Fatalf("admitted %d of %d steady attributes", n, len(steady))
			}
		})
	}
}

// TestGuardSteadyStateDoesNotAllocate checks that a span whose values were
// all admitted before costs no allocation in either wiring, and that a
// raw URL path rewritten to a known template costs only the view.
func TestGuardSteadyStateDoesNotAllocate(t *testing.T) {
	steady := []attribute.KeyValue{
		attribute.String("http.request.method", "GET"),
		attribute.String("http.route", "/api/v1/orders/{id}"),
		attribute.Int("http.response.status_code", 200),
		attribute.Float64("ratio", 0.5),
		attribute.Bool("sampled", true),
		attribute.String("user_agent.original", strings.Repeat("Mozilla/5.0 ", 10)),
	}
	raw := append(slices.Clone(steady), attribute.String("url.path", "/api/v1/orders/12345"))
	next := append(slices.Clone(steady), attribute.String("url.path", "/api/v1/orders/67890"))
	g := CardinalityGuard(WithMeterProvider(noop.NewMeterProvider()), WithDownstream(tracetest.NewSpanRecorder()))
	spans := map[string]sdktrace.ReadOnlySpan{
		"steady": endedSpan(t, "GET /api/v1/orders/{id}", steady...),
		"raw":    endedSpan(t, "GET /api/v1/orders/{id}", raw...),
		"next":   endedSpan(t, "GET /api/v1/orders/{id}", next...),
	}
	for _, s := range spans {
		g.sanitize(s)
	}
	if n := testing.AllocsPerRun(100, func() { g.sanitize(spans["steady"]) }); n != 0 {
		t.Errorf("steady span: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() { g.sanitize(spans["next"]) }); n != 1 {
		t.Errorf("span with a raw path of a known template: %v allocations, want 1 (the view)", n)
	}
	v, _ := attrOf(g.sanitize(spans["next"]), "url.path")
	if v.AsString() != "/api/v1/orders/{id}" {
		t.Fatalf("url.path = %q", v.AsString())
	}

	plain := CardinalityGuard(WithMeterProvider(noop.NewMeterProvider()))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(plain))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	_, live := tp.Tracer("test").Start(context.Background(), "GET /api/v1/orders/{id}", trace.WithAttributes(steady...))
	defer live.End()
	rw := live.(sdktrace.ReadWriteSpan)
	plain.OnStart(context.Background(), rw)
	if n := testing.AllocsPerRun(100, func() { plain.OnStart(context.Background(), rw) }); n != 0 {
		t.Errorf("plain wiring, steady span: %v allocations", n)
	}
}

// TestGuardTemplates checks the cache of normalized values: a raw value
// normalized to a cached template is rewritten to that very string, and
// templates the cache cannot hold (too long, or more than its slots) are
// still rewritten and counted right.
func TestGuardTemplates(t *testing.T) {
	g := CardinalityGuard(WithMeterProvider(noop.NewMeterProvider()))
	st := g.state.Load()
	check := func(raw, want string) string {
		t.Helper()
		kv := attribute.String("url.path", raw)
		got, v := g.guardAttr(st, &kv)
		if v != rewritten || got != want {
			t.Fatalf("%q: %q, verdict %d; want %q rewritten", raw, got, v, want)
		}
		return got
	}
	first := check("/orders/1", "/orders/{id}")
	if again := check("/orders/2", "/orders/{id}"); unsafe.StringData(again) != unsafe.StringData(first) {
		t.Fatal("a cached template was copied again")
	}
	// A template admitted as a raw value is cached too.
	kv := attribute.String("url.path", "/carts/{id}")
	if _, v := g.guardAttr(st, &kv); v != pass {
		t.Fatalf("template as a raw value: verdict %d", v)
	}
	check("/carts/9", "/carts/{id}")
	if n := testing.AllocsPerRun(100, func() { check("/carts/10", "/carts/{id}") }); n != 0 {
		t.Errorf("rewrite to a template admitted raw: %v allocations", n)
	}
	long := "/" + strings.Repeat("x", maxCachedTemplate) + "/"
	check(long+"1", long+"{id}")
	check(long+"2", long+"{id}")
	for i := range 2 * templateSlots {
		p := "/t" + strings.Repeat("a", i) + "/"
		check(p+"1", p+"{id}")
		check(p+"2", p+"{id}")
	}
	if s := g.Stats(); s.Values != 3+2*templateSlots || s.ReplacedOverLimit != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

// TestGuardViewSizes checks the views of rewritten spans for attribute
// counts that fit each of the view's sizes and for one that fits none.
func TestGuardViewSizes(t *testing.T) {
	for _, n := range []int{1, 9, 10, 19, 20, 40} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			p := newWrapping(t, WithKeyLimit("enduser.id", 1))
			attrs := []attribute.KeyValue{attribute.String("enduser.id", "first")}
			for i := 1; i < n; i++ {
				attrs = append(attrs, attribute.Int("k"+strconv.Itoa(i), i))
			}
			p.span("op", attrs)
			attrs[0] = attribute.String("enduser.id", "second")
			s := p.span("op", attrs)
			got := s.Attributes()
			if len(got) != n+1 || !marked(s) {
				t.Fatalf("%d attributes, marked %v; want %d and marked", len(got), marked(s), n+1)
			}
			if v, _ := attrOf(s, "enduser.id"); v.AsString() != OverflowValue {
				t.Fatalf("enduser.id = %q", v.AsString())
			}
			for i := 1; i < n; i++ {
				if v, _ := attrOf(s, attribute.Key("k"+strconv.Itoa(i))); v.AsInt64() != int64(i) {
					t.Fatalf("k%d = %v", i, v.Emit())
				}
			}
		})
	}
}

// opaqueSpan hides the concrete type of a span, so that the Guard reads it
// through its methods instead of in place.
type opaqueSpan struct{ sdktrace.ReadOnlySpan }

// TestGuardReadsSpansInPlaceAsThroughMethods checks that an SDK span read
// in place and the same span read through its methods get the same
// verdicts: the same name and attributes downstream.
func TestGuardReadsSpansInPlaceAsThroughMethods(t *testing.T) {
	spans := []sdktrace.ReadOnlySpan{
		endedSpan(t, "GET /users/{id}", attribute.String("http.route", "/users/{id}")),
		endedSpan(t, "GET /users/12345", attribute.String("url.path", "/users/12345/orders"), attribute.Int("n", 7)),
		endedSpan(t, "op", attribute.String("enduser.id", "a"), attribute.String("enduser.id", "b")),
		endedSpan(t, "op", attribute.String("enduser.id", "c")),
	}
	run := func(wrap func(sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan) (out []string) {
		rec := tracetest.NewSpanRecorder()
		g := CardinalityGuard(WithMeterProvider(noop.NewMeterProvider()), WithKeyLimit("enduser.id", 2), WithDownstream(rec))
		for _, s := range spans {
			g.OnEnd(wrap(s))
		}
		for _, s := range rec.Ended() {
			out = append(out, s.Name()+" "+fmt.Sprint(s.Attributes()))
		}
		return out
	}
	inPlace := run(func(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan { return s })
	methods := run(func(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan { return opaqueSpan{s} })
	if !slices.Equal(inPlace, methods) {
		t.Fatalf("in place:\n%q\nthrough methods:\n%q", inPlace, methods)
	}
}
