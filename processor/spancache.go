package processor

import (
	"encoding/binary"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracekeeper/tracekeeper/internal/mirror"
)

// spanCache remembers, by identity, spans that passed the Guard unchanged,
// so that a span made of the very same strings and numbers again passes
// with a comparison per attribute instead of a hash and a probe each.
//
// Instrumentation mostly builds the attributes of a span from strings made
// once, constants or strings built at startup, so span after span the same
// key and value strings arrive with the same data pointers and lengths,
// and the SDK copies only the KeyValue headers into each span. An entry
// records the identity of a span's name and of each of its attributes: the
// data pointer and length of the key and of a string value, the type, and
// the bits of a number or boolean. It holds those pointers, which keeps
// the strings' memory alive, so while the entry exists a string with the
// same pointer and length has the same bytes: a span that matches an
// entry is, byte for byte, one that passed unchanged in the same state,
// and since admitted values stay admitted until a reset, it passes again.
// A span that does not match is checked as if the cache did not exist.
//
// Lookups take no lock: a slot's entry is immutable once published
// through an atomic pointer. A span's identities are hashed cheaply (the
// match is exact, so the hash only spreads spans over the slots) and it is
// learnt only on its second consecutive sighting in its slot with the
// same hash (the same low 32 bits of it): attributes whose strings are
// new on every span (a user agent copied from each request, say) never
// repeat their identity, so such spans never allocate an entry. An entry
// that has matched once keeps its slot until the state is reset; one that
// never matched may be replaced. A span may sit in either slot of a pair,
// so that two spans whose hashes pick the same slot can both be held; each
// slot also holds a tag of its entry's hash, so that a lookup compares the
// span with the entry of at most one of the two, the one whose tag is the
// span's.
//
// Spans are also sorted by the identity of their name into gates, and a
// gate keeps one entry of its name, which a span is compared with before
// anything is hashed: the spans of most names start with one set of
// attributes at a time, so most spans match it without a hash or a read
// of the slots. A gate's entry is the first learnt for it, or, while that
// one has not matched, the last that matched through the slots. The number
// of entries made per state is bounded (maxSpanInstalls), and so is the
// memory they hold: at most spanCacheSlots+spanGates live entries of at
// most maxCachedAttrs attributes and maxEntryBytes of strings each.
//
// Spans that cannot match, those with a string made anew for each span,
// would pay for the lookup at every span; so a gate also counts its spans'
// misses: once missesToSkip spans of a name in a row have missed, spans of
// that name skip the cache but for one in 1<<sampleBits of them, chosen by
// span ID, which keeps looking and learning; a match opens the gate
// again.
type spanCache struct {
	slots    [spanCacheSlots]spanSlot
	gates    [spanGates]spanGate
	installs atomic.Int32
}

const (
	spanCacheBits   = 8
	spanCacheSlots  = 1 << spanCacheBits
	maxCachedAttrs  = 16
	maxSpanInstalls = 4 * spanCacheSlots
	// maxEntryBytes bounds the bytes of the strings (name, keys and
	// values) of a span the cache holds.
	maxEntryBytes = 1024

	spanGatesBits = 8
	spanGates     = 1 << spanGatesBits
	missesToSkip  = 32
	sampleBits    = 5 // one in 1<<sampleBits skipped spans is looked up
)

// spanGate is what the cache keeps per span name identity (names whose
// identities hash alike share one).
type spanGate struct {
	misses atomic.Uint32 // consecutive misses, up to missesToSkip
	// first is an entry of a span of the gate's name, looked at before
	// hashing the span: most names come with one set of attributes at a
	// time, so most spans match it without their identities hashed. It
	// is the first entry learnt for the gate, or, while that one has not
	// matched, one that matched through the slots.
	first atomic.Pointer[spanEntry]
}

func (g *spanGate) Load() uint32 { return g.misses.Load() }

// gate returns the gate of the spans named name.
func (c *spanCache) gate(name string) *spanGate {
	x := (uint64(uintptr(unsafe.Pointer(unsafe.StringData(name)))) ^ uint64(len(name))<<48) * 0x9e3779b97f4a7c15
	return &c.gates[x>>(64-spanGatesBits)]
}

// open reports whether a span that gate counts is to be looked up, or
// whether only a sample of such spans is (see sampled).
func open(gate *spanGate) bool { return gate.misses.Load() < missesToSkip }

// sampled reports whether the span of ID id is one of the skipped spans
// that are looked up all the same: one in 1<<sampleBits, by a hash of the
// ID, so that IDs that are not random are sampled too.
func sampled(id trace.SpanID) bool {
	return binary.LittleEndian.Uint64(id[:])*0x9e3779b97f4a7c15>>(64-sampleBits) == 0
}

// spanProbe is what lookup found out about a span that missed: its hash
// and its gate.
type spanProbe struct {
	h    uint64
	gate *spanGate
}

// lookup reports whether a span with this name and these attributes,
// counted by gate, matches an entry. When it does not and the span could
// be held, it returns the probe to hand to missed once the span has been
// checked.
func (c *spanCache) lookup(gate *spanGate, name string, attrs []attribute.KeyValue) (spanProbe, bool) {
	if e := gate.first.Load(); e != nil && e.matches(name, attrs) {
		e.matched()
		gate.opened()
		return spanProbe{}, true
	}
	h := c.hash(name, attrs)
	if h == 0 {
		return spanProbe{}, false
	}
	if e := c.has(h, name, attrs); e != nil {
		if f := gate.first.Load(); f == nil || !f.hit.Load() {
			gate.first.Store(e)
		}
		gate.opened()
		return spanProbe{}, true
	}
	return spanProbe{h, gate}, false
}

// opened resets the gate's count of misses after a match.
func (g *spanGate) opened() {
	if g.misses.Load() != 0 {
		g.misses.Store(0)
	}
}

// matched records that e matched a span.
func (e *spanEntry) matched() {
	if !e.hit.Load() {
		e.hit.Store(true)
	}
}

// lookupLive is lookup for the span being recorded l, read in place under
// its lock, before the SDK removes duplicate keys from its attributes: it
// also returns the span's name and how many attributes it looked at. A
// span matches an entry only if its attributes are exactly those of a span
// that passed unchanged, and an entry holds no two attributes of one key
// unless the span it was learnt from passed with both; so a span that
// matches passes once the SDK has kept only the last attribute of each key
// too.
func (c *spanCache) lookupLive(l *mirror.Live) (p spanProbe, name string, n int, hit bool) {
	l.Lock()
	name, attrs := l.Name(), l.RawAttributes()
	gate := c.gate(name)
	if open(gate) || sampled(l.SpanContext().SpanID()) {
		p, hit = c.lookup(gate, name, attrs)
	}
	l.Unlock()
	return p, name, len(attrs), hit
}

// missed is told the outcome of the check of a span that lookup missed:
// whether it passed unchanged (clean), in which case learn records it.
func (c *spanCache) missed(p spanProbe, clean bool, name string, attrs []attribute.KeyValue) {
	if clean {
		if e := c.learn(p.h, name, attrs); e != nil && p.gate.first.Load() == nil {
			p.gate.first.Store(e)
		}
	}
	if n := p.gate.misses.Load(); n < missesToSkip {
		p.gate.misses.Store(n + 1)
	}
}

type spanSlot struct {
	e atomic.Pointer[spanEntry]
	// tag is the low half of the hash of e's span, which has reads in
	// this line without reading e: of the two slots of a pair it then
	// compares the span with the entry of the one whose tag is the
	// span's, or neither. It is stored after e, and e may be seen
	// with another entry's tag: that only makes a lookup miss.
	tag  atomic.Uint32
	cand atomic.Uint32 // the low half of the hash of the last span seen missing here
}

// spanEntry is the identity of a span that passed unchanged.
type spanEntry struct {
	name    unsafe.Pointer // the name's data
	nameLen int
	hit     atomic.Bool // matched a span since it was made
	attrs   []idAttr
}

// idAttr is the identity of one attribute. key and str point to the data
// of the key and of a string value, and keep it alive;
// word holds the bits of a number or boolean, or the length of a string
// (attribute.Value keeps no number with a string), and meta the value's
// type and the key's length.
type idAttr struct {
	key, str unsafe.Pointer
	word     uint64
	meta     uint64
}

// strData returns the data pointer of s. Go never makes the pointer of an
// empty string point past the end of an object (slicing at the end keeps
// the base pointer), so it is safe to keep; two empty strings of different
// pointers only fail to match.
func strData(s string) unsafe.Pointer { return unsafe.Pointer(unsafe.StringData(s)) }

// identity returns kv's identity.
func identity(kv *attribute.KeyValue) idAttr {
	d := mirror.ValueOf(&kv.Value)
	k, s := string(kv.Key), d.Str()
	return idAttr{key: strData(k), str: strData(s), word: d.Num() ^ uint64(len(s)), meta: idMeta(d.Type(), len(k))}
}

func idMeta(typ attribute.Type, keyLen int) uint64 { return uint64(typ)<<56 ^ uint64(keyLen) }

// cacheable reports whether the cache may hold a span with this name and
// these attributes: at most maxCachedAttrs of them, each a boolean, an
// integer, a float or a string, with at most maxEntryBytes of strings in
// all.
func cacheable(name string, attrs []attribute.KeyValue) bool {
	if len(attrs) > maxCachedAttrs {
		return false
	}
	size := len(name)
	for i := range attrs {
		d := mirror.ValueOf(&attrs[i].Value)
		switch d.Type() {
		case attribute.BOOL, attribute.INT64, attribute.FLOAT64, attribute.STRING:
		default:
			return false
		}
		size += len(attrs[i].Key) + len(d.Str())
	}
	return size <= maxEntryBytes
}

// hash returns the hash of the identities of a span's name and attributes,
// never 0, or 0 for a span of more than maxCachedAttrs attributes. It only
// spreads spans over the slots: an entry is matched exactly, and only
// spans cacheable accepts are held. Use it only when
// mirror.ValueLayoutMatches.
func (c *spanCache) hash(name string, attrs []attribute.KeyValue) uint64 {
	if len(attrs) > maxCachedAttrs {
		return 0
	}
	acc := uint64(uintptr(strData(name))) ^ uint64(len(name))<<40 ^ uint64(len(attrs))<<56
	for i := range attrs {
		kv := &attrs[i]
		d := mirror.ValueOf(&kv.Value)
		x := uint64(uintptr(strData(string(kv.Key)))) ^ bits.RotateLeft64(uint64(uintptr(strData(d.Str()))), 17) ^ d.Num()
		acc = bits.RotateLeft64(acc, 23) ^ x
	}
	acc *= 0x9e3779b97f4a7c15
	return acc | 1
}

// has returns the entry a span whose hash is h, with this name and these
// attributes, matches, in the slot h picks or the other slot of its pair,
// or nil.
func (c *spanCache) has(h uint64, name string, attrs []attribute.KeyValue) *spanEntry {
	i, tag := h>>(64-spanCacheBits), uint32(h)
	e := c.slots[i].entry(tag)
	if e == nil || !e.matches(name, attrs) {
		if e = c.slots[i^1].entry(tag); e == nil || !e.matches(name, attrs) {
			return nil
		}
	}
	e.matched()
	return e
}

// entry returns the slot's entry if its tag is tag, or nil.
func (s *spanSlot) entry(tag uint32) *spanEntry {
	if s.tag.Load() != tag {
		return nil
	}
	return s.e.Load()
}

// matches reports whether a span with this name and these attributes is
// the one e records: the same pointers, lengths, types and numbers. An
// attribute of a type e cannot hold differs from e's in meta.
func (e *spanEntry) matches(name string, attrs []attribute.KeyValue) bool {
	if len(attrs) != len(e.attrs) || e.nameLen != len(name) || e.name != strData(name) {
		return false
	}
	ids := e.attrs[:len(attrs)]
	for i := range attrs {
		kv, b := &attrs[i], &ids[i]
		d := mirror.ValueOf(&kv.Value)
		k, s := string(kv.Key), d.Str()
		if b.key != strData(k) || b.str != strData(s) ||
			b.word != d.Num()^uint64(len(s)) || b.meta != idMeta(d.Type(), len(k)) {
			return false
		}
	}
	return true
}

// learn is told that the span of hash h (not 0), with this name and these
// attributes, passed unchanged and matched no entry. It records the span
// at its second consecutive sighting in the slot h picks, in that slot or
// the other of its pair, unless both hold an entry that has matched or the
// state made maxSpanInstalls entries already.
func (c *spanCache) learn(h uint64, name string, attrs []attribute.KeyValue) *spanEntry {
	i := h >> (64 - spanCacheBits)
	s := &c.slots[i]
	if e := s.e.Load(); e != nil && e.hit.Load() {
		if e = c.slots[i^1].e.Load(); e != nil && e.hit.Load() {
			return nil
		}
		s = &c.slots[i^1]
	}
	first := &c.slots[i]
	if first.cand.Load() != uint32(h) {
		first.cand.Store(uint32(h))
		return nil
	}
	if !cacheable(name, attrs) || c.installs.Load() >= maxSpanInstalls || c.installs.Add(1) > maxSpanInstalls {
		return nil
	}
	e := newSpanEntry(len(attrs))
	e.name, e.nameLen = strData(name), len(name)
	for i := range attrs {
		e.attrs[i] = identity(&attrs[i])
	}
	s.e.Store(e)
	s.tag.Store(uint32(h))
	return e
}

// newSpanEntry returns an entry for n attributes, at most maxCachedAttrs,
// with their identities in the same allocation, after the rest.
func newSpanEntry(n int) *spanEntry {
	switch {
	case n <= 4:
		e := &struct {
			spanEntry
			buf [4]idAttr
		}{}
		e.attrs = e.buf[:n]
		return &e.spanEntry
	case n <= 8:
		e := &struct {
			spanEntry
			buf [8]idAttr
		}{}
		e.attrs = e.buf[:n]
		return &e.spanEntry
	default:
		e := &struct {
			spanEntry
			buf [maxCachedAttrs]idAttr
		}{}
		e.attrs = e.buf[:n]
		return &e.spanEntry
	}
}
