package processor

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// TestGuardConcurrentSpans ends spans from many goroutines with values
// drawn from a pool twice the limit, and checks that exactly limit values
// of each key were admitted and that every value got the same verdict in
// every span: admitted everywhere or replaced everywhere.
func TestGuardConcurrentSpans(t *testing.T) {
	const (
		limit   = 50
		pool    = 2 * limit
		workers = 8
		spans   = 400
	)
	for _, wiring := range []struct {
		name string
		new  func(*testing.T, ...Option) *pipeline
	}{{"wrapping", newWrapping}, {"plain", newPlain}} {
		t.Run(wiring.name, func(t *testing.T) {
			p := wiring.new(t, WithValueLimit(limit), WithSpanNameLimit(limit), WithExemptKeys("seq"))
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tr := p.tp.Tracer("test")
					for i := range spans {
						n := (i*7 + w*13) % pool
						_, s := tr.Start(context.Background(), "op-"+letters(n), trackedAttrs(n)...)
						s.End()
					}
				}()
			}
			wg.Wait()

			verdicts := map[string]map[string]bool{} // key → original value → passed
			record := func(key, orig string, passed bool) {
				m := verdicts[key]
				if m == nil {
					m = map[string]bool{}
					verdicts[key] = m
				}
				if prev, ok := m[orig]; ok && prev != passed {
					t.Fatalf("%s=%s both passed and replaced", key, orig)
				}
				m[orig] = passed
			}
			for _, s := range p.rec.Ended() {
				var orig string
				for _, kv := range s.Attributes() {
					if kv.Key == "seq" {
						orig = kv.Value.AsString()
					}
				}
				record("name", orig, s.Name() == "op-"+letters(mustAtoi(t, orig)))
				v, _ := attrOf(s, "s")
				record("s", orig, v.AsString() == letters(mustAtoi(t, orig)))
				iv, _ := attrOf(s, "i")
				record("i", orig, iv.Type() == attribute.INT64)
			}
			for key, m := range verdicts {
				passed := 0
				for _, ok := range m {
					if ok {
						passed++
					}
				}
				if passed != limit {
					t.Errorf("%s: %d values admitted, want %d", key, passed, limit)
				}
			}
			if st := p.guard.Stats(); st.Values != 3*limit {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

// trackedAttrs returns the attributes of span n: an exempt one carrying n,
// and a string and an int derived from it.
func trackedAttrs(n int) []trace.SpanStartOption {
	return []trace.SpanStartOption{trace.WithAttributes(
		attribute.String("seq", strconv.Itoa(n)),
		attribute.String("s", letters(n)),
		attribute.Int("i", n),
	)}
}

// letters spells n in base 26 with the letters a to z, so that the
// built-in normalizer, which looks for digits, leaves it alone.
func letters(n int) string {
	b := []byte{byte('a' + n%26)}
	for n /= 26; n > 0; n /= 26 {
		b = append(b, byte('a'+n%26))
	}
	return string(b)
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestGuardConcurrentReset resets the guard while spans end, for the race
// detector: state swaps must not race with lookups.
func TestGuardConcurrentReset(t *testing.T) {
	clk := clockwork.NewFakeClock()
	p := newWrapping(t, WithValueLimit(10), WithResetInterval(time.Second), withClock(clk))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := p.tp.Tracer("test")
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, s := tr.Start(context.Background(), "op", trace.WithAttributes(attribute.String("k", letters(i*w%37))))
				s.End()
				if i%64 == 0 {
					p.rec.Reset()
					_ = p.guard.Stats()
				}
			}
		}()
	}
	for range 50 {
		clk.Advance(time.Second)
		runtime.Gosched()
	}
	close(stop)
	wg.Wait()
	clk.Advance(time.Second)
	p.span("op", nil) // at least this span sees a due reset
	if p.guard.Stats().Resets == 0 {
		t.Fatal("no reset happened")
	}
}

// footprint returns the bytes held by the tracked state: table slots, key
// strings, cached templates and a fixed allowance per key for its
// structures and map entry.
func (st *state) footprint() int {
	const perKey = 320
	n := 0
	for _, t := range []*keyTable{st.attrs, st.names} {
		t.each(func(ks *keyState) {
			n += perKey + len(ks.name)
			if !ks.exempt {
				n += 8 * ks.set.slots()
			}
			for i := range ks.templates.slots {
				if p := ks.templates.slots[i].Load(); p != nil {
					n += templateBytes
				}
			}
		})
	}
	return n + 8*st.allNames.slots()
}

// nameSlotsBound is the most slots the shards of a nameSet holding n
// names can have: a table of c values has fewer than 8c/3+2 slots, the
// smallest power of two of at least 4c/3.
func nameSlotsBound(n int) int { return 8*n/3 + 2*nameShards }

// templateBytes is what one cached template holds at most: its bytes and
// its string header.
const templateBytes = maxCachedTemplate + 16

// TestGuardMemoryBounded feeds millions of distinct values over twice as
// many keys and scopes as the guard tracks, and checks the counts, the
// structural bound and the heap growth against the documented worst case.
// With the defaults that is under 20 MiB; under the race detector, which is
// slow, the limits are scaled down by 10 and the values fed too. Every
// value is normalized into a distinct template of maxCachedTemplate bytes,
// so every key also fills its cache of templates with the longest ones.
func TestGuardMemoryBounded(t *testing.T) {
	total, limit, maxKeys, documented := 3_000_000, DefaultValueLimit, DefaultMaxKeys, 20<<20
	if testing.Short() || raceEnabled {
		total, limit, maxKeys, documented = 300_000, DefaultValueLimit/10, DefaultMaxKeys/10, 20<<20/100+1<<20
	}
	keyNames := make([]string, 2*maxKeys)
	for i := range keyNames {
		keyNames[i] = "key." + strconv.Itoa(i)
	}
	g := CardinalityGuard(WithMeterProvider(noop.NewMeterProvider()), WithNormalizedKeys(keyNames...),
		WithValueLimit(limit), WithSpanNameLimit(limit), WithMaxKeys(maxKeys))
	defer func() { _ = g.Shutdown(context.Background()) }()

	keys := len(keyNames)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	st := g.state.Load()
	buf := make([]byte, 0, maxCachedTemplate)
	fed := 0
	for i := range total {
		// "v<i in base 36>/xxx…/1" normalizes to "v<i>/xxx…/{id}".
		buf = strconv.AppendInt(append(buf[:0], 'v'), int64(i), 36)
		buf = append(buf, '/')
		for len(buf) < maxCachedTemplate-len("/{id}") {
			buf = append(buf, 'x')
		}
		v := string(append(buf, "/1"...))
		k := keyNames[i%keys]
		kv := attribute.String(k, v)
		g.guardAttr(st, &kv)
		fed++
		if i%2 == 0 {
			g.guardName(st, scopeName(k).span(), v)
			fed++
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)

	s := g.Stats()
	if s.Keys != maxKeys || s.Scopes != maxKeys {
		t.Fatalf("tracked %d keys and %d scopes, bound %d", s.Keys, s.Scopes, maxKeys)
	}
	if s.Values != 2*maxKeys*limit {
		t.Fatalf("tracked %d values, want every tracked key full: %d", s.Values, 2*maxKeys*limit)
	}
	if got := s.ReplacedOverLimit + s.ReplacedUntracked + uint64(s.Values); got != uint64(fed) {
		t.Fatalf("%d values fed, %d accounted for: %+v", fed, got, s)
	}
	worst := 2*maxKeys*(320+maxKeyLength+templateSlots*templateBytes) + // keys and scopes
		maxKeys*8*tableSlots(limit) + // the keys' values
		8*nameSlotsBound(maxKeys*limit) // the scopes' names
	if worst > documented {
		t.Fatalf("structural worst case %d bytes exceeds the documented %d", worst, documented)
	}
	fp := st.footprint()
	if fp > worst {
		t.Fatalf("footprint %d bytes exceeds the worst case %d", fp, worst)
	}
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if grew > int64(documented) {
		t.Fatalf("heap grew by %d bytes, documented bound %d", grew, documented)
	}
	t.Logf("%d values fed, %d tracked, footprint %d B, heap grew %d B, worst case %d B", fed, s.Values, fp, grew, worst)
}

// TestGuardRouteNamesMemoryBounded ends server spans with distinct huge
// routes under WithHTTPRouteSpanNames, and checks that the guard keeps
// none of the names it builds from them: a huge value costs no memory.
func TestGuardRouteNamesMemoryBounded(t *testing.T) {
	const (
		spans     = maxRouteNames
		routeSize = 64 << 10
		tolerance = 4 << 20 // the names alone would be 64 MiB
	)
	pad := strings.Repeat("x", routeSize)
	for _, w := range wirings {
		t.Run(w.name, func(t *testing.T) {
			p := w.new(t, WithHTTPRouteSpanNames(true))
			method := attribute.String("http.request.method", "GET")

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range spans {
				route := attribute.String("http.route", "/"+letters(i)+"/"+pad)
				if s := p.kindSpan(trace.SpanKindServer, "GET", []attribute.KeyValue{method, route}); i == 0 &&
					s.Name() != "GET "+route.Value.AsString() {
					t.Fatalf("span not renamed from its route: %.40q", s.Name())
				}
				p.rec.Reset()
			}
			runtime.GC()
			runtime.ReadMemStats(&after)

			grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			if grew > tolerance {
				t.Fatalf("%d spans with %d-byte routes: heap grew by %d bytes, want at most %d", spans, routeSize, grew, tolerance)
			}
			t.Logf("heap grew by %d bytes", grew)
			runtime.KeepAlive(p)
		})
	}
}
