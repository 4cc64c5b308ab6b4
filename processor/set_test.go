package processor

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
)

func TestValueSetAdmitsUpToLimit(t *testing.T) {
	for _, limit := range []int{1, 2, 5, 6, 7, 100, 1000} {
		t.Run(strconv.Itoa(limit), func(t *testing.T) {
			s := newValueSet(limit)
			for i := 1; i <= limit; i++ {
				if !s.admit(uint64(i)) {
					t.Fatalf("value %d of %d rejected", i, limit)
				}
			}
			for i := limit + 1; i <= 3*limit; i++ {
				if s.admit(uint64(i)) {
					t.Fatalf("value %d admitted past limit %d", i, limit)
				}
			}
			for i := 1; i <= limit; i++ {
				if !s.admit(uint64(i)) {
					t.Fatalf("admitted value %d later rejected", i)
				}
			}
			if got := int(s.count.Load()); got != limit {
				t.Fatalf("count = %d, want %d", got, limit)
			}
			if got, max := s.slots(), tableSlots(limit); got > max {
				t.Fatalf("table has %d slots, bound %d", got, max)
			}
		})
	}
}

func TestTableSlots(t *testing.T) {
	tests := []struct{ n, want int }{{0, 2}, {1, 2}, {2, 4}, {3, 4}, {4, 8}, {6, 8}, {7, 16}, {12, 16}, {13, 32}, {768, 1024}, {769, 2048}, {1000, 2048}}
	for _, tt := range tests {
		if got := tableSlots(tt.n); got != tt.want {
			t.Errorf("tableSlots(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

// TestValueSetConcurrent admits overlapping values from many goroutines
// and checks that exactly limit values are admitted and that every
// goroutine sees the same verdict for each value once it has settled.
func TestValueSetConcurrent(t *testing.T) {
	const limit, values, workers = 300, 1000, 8
	s := newValueSet(limit)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range values {
				s.admit(uint64((i*(w+1))%values + 1))
			}
		}()
	}
	wg.Wait()
	admitted := 0
	for i := 1; i <= values; i++ {
		if s.admit(uint64(i)) {
			admitted++
		}
	}
	if admitted != limit || int(s.count.Load()) != limit {
		t.Fatalf("admitted %d values (count %d), want %d", admitted, s.count.Load(), limit)
	}
}

func TestKeyTableBound(t *testing.T) {
	kt := newKeyTable(3)
	mk := func(k string) *keyState {
		ks := &keyState{name: k}
		ks.set.init(1)
		return ks
	}
	for _, k := range []string{"a", "b", "c"} {
		if kt.getOrAdd(k, false, mk) == nil {
			t.Fatalf("key %q not tracked", k)
		}
	}
	if kt.getOrAdd("d", false, mk) != nil {
		t.Fatal("fourth key tracked past the bound")
	}
	if kt.getOrAdd("e", true, mk) == nil {
		t.Fatal("exempt key not added")
	}
	if kt.getOrAdd(strings.Repeat("k", maxKeyLength+1), false, mk) != nil {
		t.Fatal("over-long key tracked")
	}
	if kt.lookup("a") == nil || kt.lookup("e") == nil || kt.lookup("d") != nil {
		t.Fatal("lookup disagrees with getOrAdd")
	}
	if got := kt.count.Load(); got != 3 {
		t.Fatalf("count = %d, want 3", got)
	}
}

// TestKeyCacheDynamicKeys checks that a constant key is served from the
// cache, and that keys built anew for every lookup are still found through
// the map without allocating.
func TestKeyCacheDynamicKeys(t *testing.T) {
	kt := newKeyTable(10)
	const route = "http.route"
	kt.getOrAdd(route, false, func(k string) *keyState { return &keyState{alias: k, name: strings.Clone(k)} })
	if kt.cache.get(route) == nil {
		t.Fatal("key not cached by identity")
	}
	buf := []byte(route)
	for range 2 * keyCacheSlots {
		if kt.lookup(string(buf)) == nil {
			t.Fatal("dynamic key not found")
		}
	}
	key := string(buf)
	kt.lookup(key)
	if n := testing.AllocsPerRun(100, func() { kt.lookup(key) }); n != 0 {
		t.Fatalf("lookup allocates %v times", n)
	}
}

// TestKeyStateLayout holds the layout the value check relies on: a
// keyState fills the 192-byte size class, so it starts on a 64-byte
// boundary, and the fields every check reads, inline slots included, fill
// its first cache line.
func TestKeyStateLayout(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the layout is tuned for 64-bit platforms")
	}
	var ks keyState
	setOff := unsafe.Offsetof(ks.set)
	checks := []struct {
		what      string
		got, want uintptr
	}{
		{"size", unsafe.Sizeof(ks), 192},
		{"end of the inline slots", setOff + unsafe.Offsetof(ks.set.inline) + unsafe.Sizeof(ks.set.inline), 64},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("keyState %s at %d, want %d", c.what, c.got, c.want)
		}
	}
}

func TestPairSetGrowsUpToItsBound(t *testing.T) {
	p := newPairSet()
	for i := uint64(2); i < maxPairs+2; i++ {
		p.add(i * 0x9e3779b97f4a7c15)
		if !p.has(i * 0x9e3779b97f4a7c15) {
			t.Fatalf("fingerprint %d not held after add", i)
		}
	}
	for i := uint64(2); i < maxPairs+2; i++ {
		if !p.has(i * 0x9e3779b97f4a7c15) {
			t.Fatalf("fingerprint %d lost by growth", i)
		}
	}
	p.add(12345)
	if p.has(12345) {
		t.Fatal("fingerprint added past maxPairs")
	}
	if got, max := len(p.tab.Load().slots), maxPairs*pairLoadRatio; got > max {
		t.Fatalf("table has %d slots, bound %d", got, max)
	}
}

// TestGuardRemembersOnlyTheKeysAlias checks that the pair set records
// attributes only under the key string the key's state holds: a key
// string built anew for a span is decided by the key's state every time.
func TestGuardRemembersOnlyTheKeysAlias(t *testing.T) {
	g := CardinalityGuard()
	st := g.state.Load()
	kv := attribute.String("http.request.method", "GET")
	g.guardAttr(st, &kv)
	if g.admitted(st, []attribute.KeyValue{kv}) != 1 {
		t.Fatal("admitted value of the alias missed the fast path")
	}
	built := attribute.String(strings.Clone("http.request.method"), "GET")
	g.guardAttr(st, &built)
	if g.admitted(st, []attribute.KeyValue{built}) != 0 {
		t.Fatal("value under a fresh copy of the key passed the fast path")
	}
}
