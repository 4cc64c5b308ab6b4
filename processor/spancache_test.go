package processor

import (
	"context"
	"encoding/binary"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// cached reports whether c holds a span of this name and these
// attributes.
func cached(c *spanCache, name string, attrs []attribute.KeyValue) bool {
	if e := c.gate(name).first.Load(); e != nil && e.matches(name, attrs) {
		return true
	}
	h := c.hash(name, attrs)
	return h != 0 && c.has(h, name, attrs) != nil
}

// learnt feeds the cache a span as the Guard does when it passed
// unchanged, n times.
func learnt(c *spanCache, n int, name string, attrs []attribute.KeyValue) {
	for range n {
		if h := c.hash(name, attrs); h != 0 && c.has(h, name, attrs) == nil {
			c.learn(h, name, attrs)
		}
	}
}

// TestSpanCacheHoldsRepeatedSpans checks, in both wirings, that a span
// built from the same strings again is held after it passed twice, and
// that the spans keep passing unchanged, whether their strings are those
// very ones or copies.
func TestSpanCacheHoldsRepeatedSpans(t *testing.T) {
	if !valuesInPlace {
		t.Skip("attribute.Value's layout changed: the span cache is off")
	}
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", "GET"),
		attribute.String("http.route", "/users/{id}"),
		attribute.Int("http.response.status_code", 200),
		attribute.Float64("ratio", 0.5),
		attribute.Bool("ok", true),
		attribute.String("empty", ""),
	}
	copies := make([]attribute.KeyValue, len(attrs))
	for i, kv := range attrs {
		copies[i] = kv
		if kv.Value.Type() == attribute.STRING {
			copies[i] = attribute.String(strings.Clone(string(kv.Key)), strings.Clone(kv.Value.AsString()))
		}
	}
	for _, wiring := range []struct {
		name string
		new  func(*testing.T, ...Option) *pipeline
	}{{"wrapping", newWrapping}, {"plain", newPlain}} {
		t.Run(wiring.name, func(t *testing.T) {
			p := wiring.new(t)
			st := p.guard.state.Load()
			for i := range 3 {
				for _, a := range [][]attribute.KeyValue{attrs, copies} {
					got := p.span("GET /users/{id}", a)
					if got.Name() != "GET /users/{id}" || marked(got) || len(got.Attributes()) != len(a) {
						t.Fatalf("span %d changed: %q %v", i, got.Name(), got.Attributes())
					}
					for j, kv := range got.Attributes() {
						if kv != a[j] {
							t.Fatalf("span %d: attribute %v became %v", i, a[j], kv)
						}
					}
				}
			}
			if !cached(&st.spans, "GET /users/{id}", attrs) {
				t.Fatal("a span that passed three times is not held")
			}
		})
	}
}

// TestSpanCacheMatchesIdentities checks that an entry matches a span of
// the same name and attributes by identity only: a string of the same
// bytes elsewhere, a string that shares the pointer but not the length,
// another type with the same bits or another count do not match.
func TestSpanCacheMatchesIdentities(t *testing.T) {
	if !valuesInPlace {
		t.Skip("attribute.Value's layout changed: the span cache is off")
	}
	backing := "abcdefgh"
	name := "GET /x"
	base := []attribute.KeyValue{
		attribute.String("a", backing[:3]),
		attribute.Int64("n", 1),
		attribute.String("e", backing[8:]),
	}
	c := &spanCache{}
	learnt(c, 2, name, base)
	with := func(i int, kv attribute.KeyValue) []attribute.KeyValue {
		a := append([]attribute.KeyValue(nil), base...)
		a[i] = kv
		return a
	}
	for _, tc := range []struct {
		what  string
		name  string
		attrs []attribute.KeyValue
		want  bool
	}{
		{"the same span", name, base, true},
		{"a copy of a value", name, with(0, attribute.String("a", strings.Clone(backing[:3]))), false},
		{"a copy of a key", name, with(0, attribute.String(strings.Clone("a"), backing[:3])), false},
		{"a longer value at the same address", name, with(0, attribute.String("a", backing[:4])), false},
		{"another number", name, with(1, attribute.Int64("n", 2)), false},
		{"a boolean of the same bits", name, with(1, attribute.Bool("n", true)), false},
		{"a copy of the name", strings.Clone(name), base, false},
		{"a prefix of the name", name[:5], base, false},
		{"one attribute less", name, base[:2], false},
	} {
		if got := cached(c, tc.name, tc.attrs); got != tc.want {
			t.Errorf("%s: held %v, want %v", tc.what, got, tc.want)
		}
	}
	slice := append(base[:1:1], attribute.StringSlice("s", []string{"x"}))
	learnt(c, 3, name, slice)
	if cached(c, name, slice) || cacheable(name, slice) {
		t.Error("a span with a slice value is held")
	}
	if cached(c, name, with(1, attribute.Int64Slice("n", []int64{1}))) {
		t.Error("a slice matches the number of an entry")
	}
	if h := c.hash(name, make([]attribute.KeyValue, maxCachedAttrs+1)); h != 0 {
		t.Error("a span of too many attributes is hashed for the cache")
	}
}

// TestSpanCacheSkipsFreshStrings checks that spans whose strings are new
// every time, as values copied from each request are, make no entry, and
// that the entries made are bounded.
func TestSpanCacheSkipsFreshStrings(t *testing.T) {
	if !valuesInPlace {
		t.Skip("attribute.Value's layout changed: the span cache is off")
	}
	p := newWrapping(t)
	st := p.guard.state.Load()
	for i := range 200 {
		ua := "agent/" + strconv.Itoa(i%2) // the same two contents, fresh strings
		p.span("GET /", []attribute.KeyValue{attribute.String("user_agent.original", ua)})
	}
	if n := st.spans.installs.Load(); n != 0 {
		t.Fatalf("%d entries made for spans of fresh strings", n)
	}

	c := &spanCache{}
	names := make([]string, 3*maxSpanInstalls)
	for i := range names {
		names[i] = "op " + strconv.Itoa(i)
	}
	for _, n := range names {
		learnt(c, 2, n, nil) // made, and replaceable since never matched
	}
	if n := c.installs.Load(); n != maxSpanInstalls {
		t.Fatalf("%d entries made, bound %d", n, maxSpanInstalls)
	}
	big := []attribute.KeyValue{attribute.String("k", strings.Repeat("x", maxEntryBytes))}
	d := &spanCache{}
	learnt(d, 3, "op", big)
	if n := d.installs.Load(); n != 0 {
		t.Fatalf("a span of more than %d bytes of strings is held", maxEntryBytes)
	}
}

// TestSpanCacheKeepsVerdicts checks that holding a span changes no
// verdict: another value of a full key is still replaced, the cache of a
// reset state is empty, so a held value that no longer fits is replaced,
// and with the options whose verdicts depend on more than the name and
// attributes the cache is off.
func TestSpanCacheKeepsVerdicts(t *testing.T) {
	if !valuesInPlace {
		t.Skip("attribute.Value's layout changed: the span cache is off")
	}
	clk := clockwork.NewFakeClock()
	p := newWrapping(t, WithKeyLimit("tenant", 1), WithResetInterval(time.Minute), withClock(clk))
	a := []attribute.KeyValue{attribute.String("tenant", "a")}
	b := []attribute.KeyValue{attribute.String("tenant", "b")}
	for range 3 {
		if s := p.span("op", a); marked(s) {
			t.Fatal("the first value of a key was replaced")
		}
	}
	if !cached(&p.guard.state.Load().spans, "op", a) {
		t.Fatal("a span that passed three times is not held")
	}
	if s := p.span("op", b); !marked(s) {
		t.Fatal("a second value of a key limited to one passed")
	}
	clk.Advance(2 * time.Minute)
	if s := p.span("op", b); marked(s) {
		t.Fatal("after the reset, the first value was replaced")
	}
	if s := p.span("op", a); !marked(s) {
		t.Fatal("after the reset, a value held before passed a full key")
	}

	for _, opts := range [][]Option{
		{WithNormalizer(func(_, v string) (string, bool) { return v, false })},
		{WithHTTPRouteSpanNames(true)},
	} {
		if g := CardinalityGuard(append(opts, WithMeterProvider(noop.NewMeterProvider()))...); g.spanFast {
			t.Error("span cache on with an option whose verdicts depend on more than identities")
		}
	}
}

// TestSpanCacheConcurrentSpans ends the same spans from several goroutines
// while the cache learns them, for the race detector.
func TestSpanCacheConcurrentSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	g := CardinalityGuard(WithMeterProvider(noop.NewMeterProvider()), WithDownstream(rec))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(g))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	shapes := make([][]trace.SpanStartOption, 8)
	for i := range shapes {
		shapes[i] = []trace.SpanStartOption{trace.WithAttributes(
			attribute.String("http.route", "/r/"+strconv.Itoa(i)),
			attribute.Int("http.response.status_code", 200+i))}
	}
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 500 {
				_, s := tp.Tracer("test").Start(context.Background(), "op", shapes[(i+w)%len(shapes)]...)
				s.End()
			}
		}()
	}
	for range 4 {
		<-done
	}
	for _, s := range rec.Ended() {
		if marked(s) || s.Name() != "op" {
			t.Fatalf("span changed: %q %v", s.Name(), s.Attributes())
		}
	}
}

// seqIDs numbers spans in order, so that which spans a closed gate samples
// is the same in every run.
type seqIDs struct{ n atomic.Uint64 }

func (g *seqIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	var t trace.TraceID
	binary.LittleEndian.PutUint64(t[:], g.n.Add(1))
	return t, g.NewSpanID(ctx, t)
}

func (g *seqIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	var s trace.SpanID
	binary.LittleEndian.PutUint64(s[:], g.n.Add(1))
	return s
}

// TestSpanCacheGates checks, in both wirings, that spans of a name that
// keep missing close its gate, and that spans of that name which could
// match are still learnt through the sample and open it again.
func TestSpanCacheGates(t *testing.T) {
	if !valuesInPlace {
		t.Skip("attribute.Value's layout changed: the span cache is off")
	}
	for _, wrapping := range []bool{true, false} {
		t.Run(map[bool]string{true: "wrapping", false: "plain"}[wrapping], func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			var g *Guard
			procs := []sdktrace.TracerProviderOption{sdktrace.WithIDGenerator(&seqIDs{})}
			if wrapping {
				g = CardinalityGuard(WithMeterProvider(noop.NewMeterProvider()), WithDownstream(rec))
				procs = append(procs, sdktrace.WithSpanProcessor(g))
			} else {
				g = CardinalityGuard(WithMeterProvider(noop.NewMeterProvider()))
				procs = append(procs, sdktrace.WithSpanProcessor(g), sdktrace.WithSpanProcessor(rec))
			}
			tp := sdktrace.NewTracerProvider(procs...)
			defer func() { _ = tp.Shutdown(context.Background()) }()
			const name = "op"
			span := func(attrs ...attribute.KeyValue) {
				_, s := tp.Tracer("test").Start(context.Background(), name, trace.WithAttributes(attrs...))
				s.End()
			}
			c := &g.state.Load().spans
			for i := range 2 * missesToSkip {
				span(attribute.String("user_agent.original", "agent/"+strconv.Itoa(i%2)))
			}
			if n := c.gate(name).Load(); n != missesToSkip {
				t.Fatalf("gate at %d after %d misses, want closed at %d", n, 2*missesToSkip, missesToSkip)
			}
			steady := attribute.String("user_agent.original", "agent/steady")
			for range 64 << sampleBits {
				span(steady)
			}
			if !cached(c, name, []attribute.KeyValue{steady}) || c.gate(name).Load() != 0 {
				t.Fatalf("a repeated span behind a closed gate: held %v, gate %d",
					cached(c, name, []attribute.KeyValue{steady}), c.gate(name).Load())
			}
			for _, s := range rec.Ended() {
				if marked(s) || len(s.Attributes()) != 1 {
					t.Fatalf("span changed: %v", s.Attributes())
				}
			}
		})
	}
}

// FuzzSpanCacheAgrees checks that the span cache changes no outcome: two
// Guards, one with the cache and one without, are handed the same ended
// spans, built from the fuzzed strings themselves, from copies of them and
// from new values, in both wirings' paths, and must return the same names
// and attributes.
func FuzzSpanCacheAgrees(f *testing.F) {
	f.Add("url.path", "/users/123", "GET /users/{id}", uint8(0))
	f.Add("k", "", "", uint8(7))
	f.Add(string(OverflowKey), "true", OverflowValue, uint8(3))
	f.Add("http.route", "/a/{id}", "op", uint8(255))
	f.Fuzz(func(t *testing.T, key, value, name string, seed uint8) {
		if !valuesInPlace {
			t.Skip("attribute.Value's layout changed: the span cache is off")
		}
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		opts := []Option{WithMeterProvider(noop.NewMeterProvider()), WithValueLimit(2), WithSpanNameLimit(2), WithKeyLimit("n", 1)}
		on := CardinalityGuard(append(opts, WithDownstream(tracetest.NewSpanRecorder()))...)
		off := CardinalityGuard(append(opts, WithDownstream(tracetest.NewSpanRecorder()))...)
		off.spanFast = false
		// viaOnEnd is on's twin that the spans reach through OnEnd, as
		// the SDK hands them over, which has a path of its own for the
		// SDK's snapshots.
		passed := tracetest.NewSpanRecorder()
		viaOnEnd := CardinalityGuard(append(opts, WithDownstream(passed))...)
		lastPassed := func() spanData { all := passed.Ended(); return snapshotOf(all[len(all)-1]) }
		plainOn, plainOff := CardinalityGuard(opts...), CardinalityGuard(opts...)
		plainOff.spanFast = false
		for i := range 12 {
			k, v, n := key, value, name
			switch (int(seed) + i) % 4 {
			case 1:
				k, v, n = strings.Clone(key), strings.Clone(value), strings.Clone(name)
			case 2:
				v = value + strconv.Itoa(i%3)
			case 3:
				v = value[:len(value)/2]
			}
			// n is limited to one value, and its second one comes last.
			attrs := []attribute.KeyValue{attribute.String(k, v), attribute.Int("n", i/8), attribute.Bool("b", true)}
			_, s := tp.Tracer("fuzz").Start(context.Background(), n, trace.WithAttributes(attrs...))
			a, b := snapshotOf(on.sanitize(s.(sdktrace.ReadOnlySpan))), snapshotOf(off.sanitize(s.(sdktrace.ReadOnlySpan)))
			if !sameSpan(a, b) {
				t.Fatalf("span %d, started: with the cache %q %v, without %q %v", i, a.name, a.attrs, b.name, b.attrs)
			}
			if viaOnEnd.OnEnd(s.(sdktrace.ReadOnlySpan)); !sameSpan(lastPassed(), b) {
				c := lastPassed()
				t.Fatalf("span %d, started: through OnEnd %q %v, without the cache %q %v", i, c.name, c.attrs, b.name, b.attrs)
			}
			s.End()
			all := rec.Ended()
			ended := all[len(all)-1]
			a, b = snapshotOf(on.sanitize(ended)), snapshotOf(off.sanitize(ended))
			if !sameSpan(a, b) {
				t.Fatalf("span %d, ended: with the cache %q %v, without %q %v", i, a.name, a.attrs, b.name, b.attrs)
			}
			if viaOnEnd.OnEnd(ended); !sameSpan(lastPassed(), b) {
				c := lastPassed()
				t.Fatalf("span %d, ended: through OnEnd %q %v, without the cache %q %v", i, c.name, c.attrs, b.name, b.attrs)
			}
			// The plain wiring rewrites live spans; each Guard gets its own.
			_, x := tp.Tracer("fuzz").Start(context.Background(), n, trace.WithAttributes(attrs...))
			_, y := tp.Tracer("fuzz").Start(context.Background(), n, trace.WithAttributes(attrs...))
			plainOn.OnStart(context.Background(), x.(sdktrace.ReadWriteSpan))
			plainOff.OnStart(context.Background(), y.(sdktrace.ReadWriteSpan))
			a, b = snapshotOf(x.(sdktrace.ReadOnlySpan)), snapshotOf(y.(sdktrace.ReadOnlySpan))
			if !sameSpan(a, b) {
				t.Fatalf("span %d, plain: with the cache %q %v, without %q %v", i, a.name, a.attrs, b.name, b.attrs)
			}
			x.End()
			y.End()
		}
	})
}

type spanData struct {
	name  string
	attrs []attribute.KeyValue
}

func snapshotOf(s sdktrace.ReadOnlySpan) spanData { return spanData{s.Name(), s.Attributes()} }

func sameSpan(a, b spanData) bool {
	if a.name != b.name || len(a.attrs) != len(b.attrs) {
		return false
	}
	for i := range a.attrs {
		if a.attrs[i] != b.attrs[i] {
			return false
		}
	}
	return true
}

// TestSpanCacheKeySetTwice checks, in both wirings, that a span started
// with two values of one key, of which the SDK keeps the last, is guarded
// as the SDK keeps it, whether or not a span of that last value alone is
// held by the span cache: the first value is neither admitted nor
// replaced.
func TestSpanCacheKeySetTwice(t *testing.T) {
	for _, wiring := range []struct {
		name string
		new  func(*testing.T, ...Option) *pipeline
	}{{"wrapping", newWrapping}, {"plain", newPlain}} {
		t.Run(wiring.name, func(t *testing.T) {
			p := wiring.new(t, WithKeyLimit("k", 1))
			kept := []attribute.KeyValue{attribute.String("k", "a"), attribute.Int("n", 1)}
			twice := []attribute.KeyValue{attribute.String("k", "b"), attribute.Int("n", 1), kept[0]}
			for i := range 3 {
				if got := p.span("op", kept); marked(got) || len(got.Attributes()) != 2 {
					t.Fatalf("span %d of the admitted value changed: %v", i, got.Attributes())
				}
				got := p.span("op", twice)
				if marked(got) || len(got.Attributes()) != 2 || got.Attributes()[0] != kept[0] || got.Attributes()[1] != kept[1] {
					t.Fatalf("span %d with the key set twice: %v, want %v", i, got.Attributes(), kept)
				}
			}
			if s := p.guard.Stats(); s.ReplacedOverLimit != 0 || s.Values != 3 { // "a", 1 and the name
				t.Fatalf("stats %+v: the value the SDK dropped was checked", s)
			}
			if v, _ := attrOf(p.span("op", twice[:1]), "k"); v.AsString() != OverflowValue {
				t.Fatalf("a second value of a key of limit 1 passed: %v", v.AsString())
			}
		})
	}
}

// sight is what the Guard does with a span of this name and these
// attributes that passes unchanged: look it up and, on a miss, tell the
// cache. It reports whether the span matched an entry.
func sight(c *spanCache, name string, attrs []attribute.KeyValue) bool {
	p, hit := c.lookup(c.gate(name), name, attrs)
	if !hit && p.h != 0 {
		c.missed(p, true, name, attrs)
	}
	return hit
}

// TestSpanCacheMemoryBounded feeds the cache thousands of distinct spans
// with the most strings it holds, each seen often enough to be learnt,
// with a name of their own so that every gate keeps one, and
// checks that what stays alive afterwards is the documented bound: at most
// spanCacheSlots+spanGates entries, under 820 KiB with their strings.
func TestSpanCacheMemoryBounded(t *testing.T) {
	const documented = 820 << 10
	c := &spanCache{}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const spans, attrs = 6000, maxCachedAttrs
	for i := range spans {
		// One allocation of maxEntryBytes holds the name, the keys and
		// the values.
		b := make([]byte, maxEntryBytes)
		for j := range b {
			b[j] = byte('a' + (i+j)%26)
		}
		all := string(b)
		part := maxEntryBytes / (2*attrs + 1)
		name := all[:part]
		kvs := make([]attribute.KeyValue, attrs)
		for j := range kvs {
			at := part * (2*j + 1)
			kvs[j] = attribute.String(all[at:at+part], all[at+part:at+2*part])
		}
		// Seen twice, a span is learnt without matching, so the next
		// span learnt in its slot replaces it there, but not in its gate.
		for range 2 + i%2 {
			sight(c, name, kvs)
		}
	}
	live := map[*spanEntry]bool{}
	for i := range c.slots {
		if e := c.slots[i].e.Load(); e != nil {
			live[e] = true
		}
	}
	gates := 0
	for i := range c.gates {
		if e := c.gates[i].first.Load(); e != nil {
			live[e] = true
			gates++
		}
	}
	if len(live) > spanCacheSlots+spanGates || gates == 0 {
		t.Fatalf("%d live entries (%d held by gates), bound %d", len(live), gates, spanCacheSlots+spanGates)
	}
	n := len(live)
	clear(live)
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if grew > documented {
		t.Fatalf("the cache keeps %d bytes alive, documented bound %d", grew, documented)
	}
	t.Logf("%d entries made, %d live (%d held by gates), %d bytes kept alive", c.installs.Load(), n, gates, grew)
	runtime.KeepAlive(c)
}

// TestSpanCacheGateEntry checks that a span matches the entry its gate
// keeps without being looked up in the slots, that a gate keeps an
// entry that matched through the slots while its own has not matched,
// and that a gate's entry that has matched is kept.
func TestSpanCacheGateEntry(t *testing.T) {
	if !valuesInPlace {
		t.Skip("attribute.Value's layout changed: the span cache is off")
	}
	c := &spanCache{}
	name := "GET /users/{id}"
	a := []attribute.KeyValue{attribute.String("http.route", "/users/{id}"), attribute.Int("n", 1)}
	b := []attribute.KeyValue{attribute.String("http.route", "/users/{id}"), attribute.Int("n", 2)}
	learnt(c, 2, name, a)
	learnt(c, 2, name, b)
	g := c.gate(name)
	if g.first.Load() != nil {
		t.Fatal("a gate has an entry before any span of its name matched or was learnt through it")
	}
	if !sight(c, name, b) || g.first.Load() == nil || !g.first.Load().matches(name, b) {
		t.Fatal("a span that matched through the slots is not its gate's entry")
	}
	// Empty the slots: a span that matches its gate's entry still passes.
	for i := range c.slots {
		c.slots[i].e.Store(nil)
	}
	if !sight(c, name, b) {
		t.Fatal("a span of its gate's entry missed")
	}
	if cached(c, name, a) {
		t.Fatal("a span held by no slot and not its gate's entry matched")
	}
	// b's entry has matched: a span learnt afterwards does not replace it.
	learnt(c, 2, name, a)
	if !sight(c, name, a) || !g.first.Load().matches(name, b) {
		t.Fatal("a gate's entry that matched was replaced")
	}
}
