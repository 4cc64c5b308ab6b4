package processor

import (
	"math"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// valueSet records the 64-bit hashes of the distinct values admitted for
// one attribute key or one instrumentation scope, up to limit of them.
//
// The first inlineSlots values are held in the set itself, where a check
// compares a hash with all of them at once; more values move the set into
// an open-addressing table. Lookups take no lock: they load the current
// table, or the inline slots, with atomic loads. Admitting a new value takes the set's own mutex, so only the
// first sighting of a value is serialized, and only against other first
// sightings for the same key. Once the set is full it never changes again,
// and values that miss are rejected without taking the mutex.
//
// Storing hashes instead of the values keeps the memory of a set fixed per
// entry whatever the length of the values. Two distinct values whose hashes
// collide count as one; with 64-bit hashes and at most a few thousand values
// per set that is vanishingly rare, and its only effect is that one extra
// value passes.
type valueSet struct {
	tab    atomic.Pointer[hashTable] // nil while the values fit in inline
	inline [inlineSlots]atomic.Uint64

	full  atomic.Bool
	count atomic.Int64 // admitted values, for Stats
	mu    sync.Mutex
	n     int // admitted values, guarded by mu
	limit int
	// shared, when set, holds the set's values, in common with other
	// sets: this one holds none of its own and counts only the values it
	// brought, up to limit, while a value another set brought passes
	// without counting. The span names of all scopes share one.
	shared *nameSet
}

// nameSet holds the hashes of the span names admitted in any scope, in
// shards chosen by the hash so that admitting a name locks and grows a
// table of a 64th of them. The scopes' limits bound the names it holds,
// and so the shards, which have no limit of their own.
type nameSet struct {
	shards [nameShards]valueSet
}

const (
	nameShardBits = 6
	nameShards    = 1 << nameShardBits
)

func newNameSet() *nameSet {
	n := &nameSet{}
	for i := range n.shards {
		n.shards[i].init(math.MaxInt)
	}
	return n
}

// shard returns the shard that holds h.
func (n *nameSet) shard(h uint64) *valueSet { return &n.shards[h>>(64-nameShardBits)] }

// has reports whether a scope admitted the name of hash h, without a lock.
func (n *nameSet) has(h uint64) bool { return n.shard(h).has(h) }

// slots returns the size of the shards' tables, for footprint accounting.
func (n *nameSet) slots() int {
	total := 0
	for i := range n.shards {
		total += n.shards[i].slots()
	}
	return total
}

// hashTable is an open-addressing table of non-zero hashes with linear
// probing. A slot holding 0 is empty. A table is never more than three
// quarters full, so every probe sequence reaches an empty slot.
type hashTable struct {
	mask  uint64
	slots []atomic.Uint64
}

const (
	inlineSlots   = 4
	minTableSlots = 8 // the first table, when the inline slots overflow
)

func newValueSet(limit int) *valueSet {
	s := &valueSet{}
	s.init(limit)
	return s
}

// init prepares a zero valueSet to admit up to limit values.
func (s *valueSet) init(limit int) { s.limit = limit }

// tableSlots returns the number of slots needed to hold n hashes at a load
// of at most three quarters: the smallest power of two p >= 2 with
// 4n <= 3p. A valueSet's table never grows beyond tableSlots(limit).
func tableSlots(n int) int {
	need := uint((4*n + 2) / 3)
	if need < 2 {
		need = 2
	}
	return 1 << bits.Len(need-1)
}

func newHashTable(slots int) *hashTable {
	return &hashTable{mask: uint64(slots - 1), slots: make([]atomic.Uint64, slots)}
}

// holds reports whether h was admitted: by this set or, when it shares its
// values, by any set sharing them.
func (s *valueSet) holds(h uint64) bool {
	if s.shared != nil {
		return s.shared.has(h)
	}
	return s.has(h)
}

// has reports whether the set holds h, without a lock. A set whose values
// are shared holds none of its own: see holds.
func (s *valueSet) has(h uint64) bool {
	if t := s.tab.Load(); t != nil {
		return t.contains(h)
	}
	return s.inlineHas(h)
}

func (s *valueSet) inlineHas(h uint64) bool {
	// min compiles to conditional moves: a match in any slot makes it 0,
	// and where the match is decides no branch.
	in := &s.inline
	return min(in[0].Load()^h, in[1].Load()^h, in[2].Load()^h, in[3].Load()^h) == 0
}

func (t *hashTable) contains(h uint64) bool {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		switch t.slots[i].Load() {
		case h:
			return true
		case 0:
			return false
		}
	}
}

// insert stores h in the first empty slot of its probe sequence. The caller
// holds the set's mutex and has checked that h is absent.
func (t *hashTable) insert(h uint64) {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		if t.slots[i].Load() == 0 {
			t.slots[i].Store(h)
			return
		}
	}
}

// admit reports whether the value with hash h is admitted: it was admitted
// before, or it is new and the set still has room, in which case it is
// recorded. h must not be 0.
func (s *valueSet) admit(h uint64) bool {
	ok, _ := s.check(h)
	return ok
}

// check is admit that also reports whether this very call recorded h.
func (s *valueSet) check(h uint64) (ok, added bool) {
	if s.holds(h) {
		return true, false
	}
	if s.full.Load() {
		// The last value may have been stored just before full was set;
		// a fresh look sees it.
		return s.holds(h), false
	}
	return s.admitSlow(h)
}

func (s *valueSet) admitSlow(h uint64) (ok, added bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holds(h) {
		return true, false
	}
	if s.n >= s.limit {
		return false, false
	}
	if s.shared != nil {
		// Another set sharing the values may have brought h meanwhile:
		// then it passes, counted there.
		if _, added := s.shared.shard(h).admitSlow(h); !added {
			return true, false
		}
	} else {
		s.store(h)
	}
	s.n++
	s.count.Store(int64(s.n))
	if s.n >= s.limit {
		s.full.Store(true)
	}
	return true, true
}

// store records h, which the set does not hold; the caller holds s.mu.
func (s *valueSet) store(h uint64) {
	t := s.tab.Load()
	switch {
	case t == nil && s.n < inlineSlots:
		s.inline[s.n].Store(h)
	case t == nil:
		// Move into a table; readers that still see no table check the
		// inline slots, which keep their values.
		g := newHashTable(minTableSlots)
		for i := range s.inline {
			g.insert(s.inline[i].Load())
		}
		g.insert(h)
		s.tab.Store(g)
	case (s.n+1)*4 > len(t.slots)*3:
		// Grow into a new table; readers holding the old one keep a
		// consistent subset and fall through to this path on a miss.
		g := newHashTable(len(t.slots) * 2)
		for i := range t.slots {
			if v := t.slots[i].Load(); v != 0 {
				g.insert(v)
			}
		}
		g.insert(h)
		s.tab.Store(g)
	default:
		t.insert(h)
	}
}

// slots returns the size of the current table, or 0 while the values are
// inline, for footprint accounting.
func (s *valueSet) slots() int {
	if t := s.tab.Load(); t != nil {
		return len(t.slots)
	}
	return 0
}

// keyState is what the Guard knows about one attribute key or one scope.
// The fields read on every check come first.
//
// A keyState is laid out in 192 bytes, a size class whose objects the
// allocator places on 64-byte boundaries: a check of a value reads the
// first cache line (alias, flags, the table pointer and, for a key of at
// most four values, the values' hashes) and, for a key with more, its
// table; TestKeyStateLayout holds the layout in place.
type keyState struct {
	// alias is the key string the state was created with, as the caller
	// passed it; the key cache matches callers' strings against it by
	// identity. name is a private copy of the same bytes.
	alias     string
	exempt    bool
	normalize bool          // the built-in normalizer applies
	set       valueSet      // unused when exempt; embedded to save pointer hops
	templates templateCache // used when normalize is set
	name      string

	// counter is the self-metric series this key's replacements are
	// counted in, assigned at the first replacement.
	counter atomic.Pointer[replacedCounter]

	_ [keyStatePad]byte
}

const keyStatePad = 24 // to 192 bytes

// templateCache holds copies of the first few normalized values admitted
// for one key or scope, so that a raw value normalized into one of them,
// "/users/12345" into "/users/{id}" for example, is rewritten to the
// cached copy instead of a new string: the common rewrite allocates
// nothing.
//
// A template is cached only when the set records it, so filling the cache
// never costs an allocation in the steady state, and a slot is filled once
// and never replaced: a lookup needs no lock. Slots are chosen by the
// template's length, two candidates per template, so a miss costs at most
// two length comparisons and rarely a byte comparison. Templates longer
// than maxCachedTemplate bytes are not cached, which bounds the memory held
// to templateSlots × maxCachedTemplate bytes per key.
type templateCache struct {
	slots [templateSlots]atomic.Pointer[string]
}

const (
	templateSlots     = 4
	maxCachedTemplate = 128
)

func templateSlot(v string) int { return len(v) & (templateSlots - 1) }

// lookup returns the cached string equal to v, if any.
func (c *templateCache) lookup(v string) (string, bool) {
	i := templateSlot(v)
	if p := c.slots[i].Load(); p != nil && *p == v {
		return *p, true
	}
	if p := c.slots[i^1].Load(); p != nil && *p == v {
		return *p, true
	}
	return "", false
}

// store caches a copy of v, which the set has just recorded, if v is
// short enough and one of its two slots is free. It returns the cached
// copy and true, or "" and false. v may point into memory the caller
// reuses: only the copy is kept.
func (c *templateCache) store(v string) (string, bool) {
	if v == "" || len(v) > maxCachedTemplate {
		return "", false
	}
	i := templateSlot(v)
	if c.slots[i].Load() != nil && c.slots[i^1].Load() != nil {
		return "", false
	}
	p := new(string)
	*p = strings.Clone(v)
	if c.slots[i].CompareAndSwap(nil, p) || c.slots[i^1].CompareAndSwap(nil, p) {
		return *p, true
	}
	return "", false
}

// keyTable maps attribute keys, or scope names, to their keyState. Lookups
// read an immutable map through an atomic pointer and take no lock; adding a
// key copies the map under the table's mutex. The number of keys is bounded,
// so the copies are too.
type keyTable struct {
	m     atomic.Pointer[map[string]*keyState]
	full  atomic.Bool
	cache keyCache

	mu      sync.Mutex
	tracked int // keys counted against max, guarded by mu
	count   atomic.Int64
	max     int
}

func newKeyTable(maxKeys int) *keyTable {
	t := &keyTable{max: maxKeys}
	m := map[string]*keyState{}
	t.m.Store(&m)
	return t
}

func (t *keyTable) lookup(key string) *keyState {
	if ks := t.cache.get(key); ks != nil {
		return ks
	}
	return (*t.m.Load())[key]
}

// getOrAdd returns the state of key, adding it with newState when there is
// room. It returns nil when the key cannot be tracked. exempt reports
// whether key is exempt; exempt keys are always added and do not count
// towards the bound.
func (t *keyTable) getOrAdd(key string, exempt bool, newState func(string) *keyState) *keyState {
	if ks := t.lookup(key); ks != nil {
		return ks
	}
	if !exempt && (len(key) > maxKeyLength || t.full.Load()) {
		return t.lookup(key)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.m.Load()
	if ks := old[key]; ks != nil {
		return ks
	}
	if !exempt && t.tracked >= t.max {
		return nil
	}
	ks := newState(key)
	m := make(map[string]*keyState, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[ks.name] = ks
	t.m.Store(&m)
	t.cache.put(key, ks)
	if !exempt {
		t.tracked++
		t.count.Store(int64(t.tracked))
		if t.tracked >= t.max {
			t.full.Store(true)
		}
	}
	return ks
}

// each calls f for every key in the table.
func (t *keyTable) each(f func(*keyState)) {
	for _, ks := range *t.m.Load() {
		f(ks)
	}
}

// keyCache is a cache in front of a keyTable's map, keyed by the identity
// of the caller's key string: its data pointer and length. Attribute keys
// and scope names are nearly always string constants or strings made once,
// so the same key arrives with the same pointer span after span, and a hit
// costs a pointer comparison instead of hashing the key. A slot holds a
// keyState whose alias is that very string; the keyState keeps the string
// alive, so its memory cannot be reused for different bytes while cached.
// Each key may sit in either slot of a pair, and a slot is filled once and
// never replaced. A key built anew for every span never matches an alias
// and falls back to the map, without allocating.
type keyCache struct {
	slots [keyCacheSlots]atomic.Pointer[keyState]
}

const keyCacheBits = 8
const keyCacheSlots = 1 << keyCacheBits

func keyCacheSlot(key string) uint64 {
	p := uint64(uintptr(unsafe.Pointer(unsafe.StringData(key))))
	return ((p ^ uint64(len(key))<<48) * 0x9e3779b97f4a7c15) >> (64 - keyCacheBits)
}

func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

func (c *keyCache) get(key string) *keyState {
	i := keyCacheSlot(key)
	if ks := c.slots[i].Load(); ks != nil && sameString(ks.alias, key) {
		return ks
	}
	if ks := c.slots[i^1].Load(); ks != nil && sameString(ks.alias, key) {
		return ks
	}
	return nil
}

// put caches ks, whose alias must be key, in the first free slot of the
// key's pair.
func (c *keyCache) put(key string, ks *keyState) {
	if len(key) == 0 || !sameString(ks.alias, key) {
		return
	}
	i := keyCacheSlot(key)
	if c.slots[i].CompareAndSwap(nil, ks) {
		return
	}
	c.slots[i^1].CompareAndSwap(nil, ks)
}

// pairSet holds fingerprints of (attribute key, value) pairs known to
// pass: the key's set admitted the value. It lets the span path decide an
// admitted attribute with one hash of the value, seeded by the key's
// identity (keySeed), and one probe, without finding the key's state
// first. It is only a cache in front of the keys' sets: a pair it does not
// hold is decided by the key's state, as if it did not exist.
//
// Lookups take no lock and read the current table through an atomic
// pointer. Adding a pair takes the mutex; growing the table copies it
// into a new one, and readers still holding the old one see a subset.
// The table is kept at most half full, so that a probe that misses ends
// soon, and holds at most maxPairs fingerprints (128 KiB of slots); pairs
// beyond that are decided by their key's state every time.
type pairSet struct {
	tab atomic.Pointer[hashTable]
	mu  sync.Mutex
	n   int // fingerprints held, guarded by mu
}

const (
	maxPairs      = 8192
	minPairSlots  = 64
	pairLoadRatio = 2 // slots per fingerprint, at least
)

func newPairSet() *pairSet {
	p := &pairSet{}
	p.tab.Store(newHashTable(minPairSlots))
	return p
}

// has reports whether the set holds fingerprint fp.
func (p *pairSet) has(fp uint64) bool { return p.tab.Load().contains(fp) }

// add records fp, unless the set is full. fp must not be 0.
func (p *pairSet) add(fp uint64) {
	if p.has(fp) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.tab.Load()
	if p.n >= maxPairs || t.contains(fp) {
		return
	}
	if (p.n+1)*pairLoadRatio > len(t.slots) {
		g := newHashTable(len(t.slots) * 2)
		for i := range t.slots {
			if v := t.slots[i].Load(); v != 0 {
				g.insert(v)
			}
		}
		g.insert(fp)
		p.tab.Store(g)
	} else {
		t.insert(fp)
	}
	p.n++
}
