package sampler

import (
	"encoding/binary"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// outcome is the decision taken for a held trace.
type outcome uint8

const (
	outcomeReleased    outcome = iota // no rule matched
	outcomeError                      // kept: a span had status Error
	outcomeLatency                    // kept: the spans covered the latency threshold
	outcomePredicate                  // kept: the predicate matched
	outcomeRateLimited                // a rule matched, but the cap was reached
	numOutcomes
)

func (o outcome) kept() bool {
	return o == outcomeError || o == outcomeLatency || o == outcomePredicate
}

// keptByAttrs are the attributes a kept trace's spans carry, by outcome.
// Each slice's capacity equals its length, so nobody appending to it can
// write into it.
var keptByAttrs = [numOutcomes][]attribute.KeyValue{
	outcomeError:     {KeptByKey.String(KeptByError)},
	outcomeLatency:   {KeptByKey.String(KeptByLatency)},
	outcomePredicate: {KeptByKey.String(KeptByPredicate)},
}

// decisionNames are the values of DecisionKey, and of the decision
// attribute of the traces.decided metric, by outcome.
var decisionNames = [numOutcomes]string{
	outcomeReleased:    DecisionReleased,
	outcomeError:       KeptByError,
	outcomeLatency:     KeptByLatency,
	outcomePredicate:   KeptByPredicate,
	outcomeRateLimited: DecisionRateLimited,
}

// dryRunAttrs mark the spans handed on in dry run, by outcome.
var dryRunAttrs = func() (a [numOutcomes][]attribute.KeyValue) {
	for o := range a {
		a[o] = []attribute.KeyValue{WouldKeepKey.Bool(outcome(o).kept()), DecisionKey.String(decisionNames[o])}
	}
	return a
}()

var dryRunHeadAttrs = []attribute.KeyValue{WouldKeepKey.Bool(true), DecisionKey.String(KeptByHead)}

// state is where a trace entry is in its life.
type state uint8

const (
	statePending  state = iota // held, waiting for its deadline
	stateDeciding              // detached, being decided without the lock
)

// List indexes of the two intrusive lists an entry can be on.
const (
	ageList  = 0 // every pending trace, oldest first
	rootList = 1 // pending traces whose local root ended, earliest due first
)

type links struct {
	prev, next *traceEntry
	on         bool
}

// traceBaseBytes is what a held trace keeps alive besides its spans and
// its span buffer's array: its entry, its slot in the shard's map (with
// the map's growth) and the buffer's header.
var traceBaseBytes = allocSize(unsafe.Sizeof(traceEntry{})) + 64 + 24

// traceEntry is one held trace.
type traceEntry struct {
	id        trace.TraceID
	buf       *[]*heldSpan
	bytes     int64
	firstSeen time.Time // clock time its first span ended
	due       time.Time // clock time its decision delay ends, once its root ended
	rootEnded bool
	failed    bool // a held span has status Error
	state     state
	links     [2]links
}

func newEntry(id trace.TraceID, now time.Time) *traceEntry {
	e := entries.get()
	e.id = id
	e.firstSeen = now
	return e
}

// entryList is an intrusive doubly linked list over one of an entry's links.
// Both lists are ordered by deadline because every entry joins them at the
// back with the same delay added to a monotonic clock.
type entryList struct {
	head, tail *traceEntry
	which      int
}

func (l *entryList) pushBack(e *traceEntry) {
	ln := &e.links[l.which]
	ln.prev, ln.next, ln.on = l.tail, nil, true
	if l.tail != nil {
		l.tail.links[l.which].next = e
	} else {
		l.head = e
	}
	l.tail = e
}

func (l *entryList) remove(e *traceEntry) {
	ln := &e.links[l.which]
	if !ln.on {
		return
	}
	if ln.prev != nil {
		ln.prev.links[l.which].next = ln.next
	} else {
		l.head = ln.next
	}
	if ln.next != nil {
		ln.next.links[l.which].prev = ln.prev
	} else {
		l.tail = ln.prev
	}
	*ln = links{}
}

// victim is a trace detached from its shard for a decision.
type victim struct {
	e      *traceEntry
	spans  *[]*heldSpan
	failed bool // one of spans has status Error
}

// shard is one lock's worth of held traces and cached decisions. The
// limits are not split over shards: they bound the totals, kept in the
// ErrorKeeper.
type shard struct {
	mu        sync.Mutex
	traces    map[trace.TraceID]*traceEntry // pending and deciding
	age, root entryList
	spans     int     // spans held, deciding traces' late arrivals included
	held      *totals // the ErrorKeeper's

	// oldest is the firstSeen time (Unix ns) of the trace at the head of
	// age, or noneHeld: read without the lock to pick eviction victims
	// across shards.
	oldest atomic.Int64

	// The decision cache: decided holds the outcomes of the trace IDs in
	// ring, the oldest overwritten first. It is a map apart from traces,
	// without pointers, so that the collector does not scan it and the
	// map that OnEnd mostly hits stays small.
	decided  map[trace.TraceID]outcome
	ring     []trace.TraceID
	ringNext int
	ringLen  int

	_ [64]byte // keep neighbouring shards' locks off one cache line
}

const noneHeld = math.MaxInt64

// Shards: up to 16, fewer when the trace limit is small. Sharding only
// spreads the locks; the limits are global.
const (
	maxShards           = 16
	minTracesPerShard   = 64
	shardHashMultiplier = 0x9E3779B97F4A7C15
)

func (k *ErrorKeeper) initShards() {
	n := maxShards
	for n > 1 && k.cfg.maxTraces/n < minTracesPerShard {
		n /= 2
	}
	k.shardBits = uint(bits.TrailingZeros(uint(n)))
	k.shards = make([]shard, n)
	ringLen := 0
	if k.cfg.decisionCache > 0 {
		ringLen = max(k.cfg.decisionCache/n, 1)
	}
	for i := range k.shards {
		sh := &k.shards[i]
		sh.traces = make(map[trace.TraceID]*traceEntry)
		sh.decided = make(map[trace.TraceID]outcome)
		sh.age.which = ageList
		sh.root.which = rootList
		sh.oldest.Store(noneHeld)
		sh.ring = make([]trace.TraceID, ringLen)
		sh.held = &k.held
	}
}

func (k *ErrorKeeper) shardFor(id trace.TraceID) *shard {
	if k.shardBits == 0 {
		return &k.shards[0]
	}
	h := binary.LittleEndian.Uint64(id[:8]) ^ binary.LittleEndian.Uint64(id[8:])
	h *= shardHashMultiplier
	return &k.shards[h>>(64-k.shardBits)]
}

// totals are what all shards hold together, bounded by WithMaxTraces and
// WithMaxBytes. They change under the lock of the shard whose trace they
// count, and are read without it.
type totals struct {
	traces atomic.Int64
	bytes  atomic.Int64
}

// add starts holding a new pending trace. Callers hold sh.mu.
func (sh *shard) add(e *traceEntry) {
	sh.age.pushBack(e)
	if sh.age.head == e {
		sh.oldest.Store(e.firstSeen.UnixNano())
	}
	sh.held.traces.Add(1)
}

// grow accounts a span added to a held or deciding trace. Callers hold
// sh.mu.
func (sh *shard) grow(e *traceEntry, size int64) {
	e.bytes += size
	sh.spans++
	sh.held.bytes.Add(size)
}

// detach takes a pending trace off the lists and the counts for a decision.
// The entry stays in the map, marked deciding, so that spans arriving
// meanwhile are gathered and follow the decision. Callers hold sh.mu.
func (sh *shard) detach(e *traceEntry) victim {
	wasOldest := sh.age.head == e
	sh.age.remove(e)
	sh.root.remove(e)
	if wasOldest {
		if h := sh.age.head; h != nil {
			sh.oldest.Store(h.firstSeen.UnixNano())
		} else {
			sh.oldest.Store(noneHeld)
		}
	}
	sh.held.traces.Add(-1)
	v := victim{e: e, spans: e.buf, failed: e.failed}
	if e.buf != nil {
		sh.spans -= len(*e.buf)
	}
	sh.held.bytes.Add(-e.bytes)
	e.buf, e.bytes, e.failed = nil, 0, false
	e.state = stateDeciding
	return v
}

// finish records the decision for a deciding trace and returns the spans
// that arrived while it was being decided (nil if none). With remember
// false, or a cache of size zero, the decision is forgotten at once.
// Callers hold sh.mu.
func (sh *shard) finish(e *traceEntry, o outcome, remember bool) *[]*heldSpan {
	extra := e.buf
	if extra != nil {
		sh.spans -= len(*extra)
	}
	sh.held.bytes.Add(-e.bytes)
	e.buf, e.bytes = nil, 0
	delete(sh.traces, e.id)
	if !remember || len(sh.ring) == 0 {
		return extra
	}
	if sh.ringLen == len(sh.ring) {
		// A trace ID is in the ring once: it is remembered only when
		// decided, and decided again only after it was forgotten.
		delete(sh.decided, sh.ring[sh.ringNext])
	} else {
		sh.ringLen++
	}
	sh.decided[e.id] = o
	sh.ring[sh.ringNext] = e.id
	sh.ringNext = (sh.ringNext + 1) % len(sh.ring)
	return extra
}

// clear forgets every cached decision; used at Shutdown after the shard was
// drained.
func (sh *shard) clear() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	clear(sh.traces)
	clear(sh.decided)
	sh.ring = nil
	sh.ringLen, sh.ringNext = 0, 0
}

// Typed pools for the per-trace span buffers and entries, which are the
// only allocations this package makes for a recorded-only trace.
type spanBufPool struct{ p sync.Pool }

// spanBufCap is the starting capacity of a span buffer; traces with more
// spans grow theirs, and buffers grown past maxPooledSpanBuf are not kept.
const (
	spanBufCap       = 8
	maxPooledSpanBuf = 1024
)

func (p *spanBufPool) get() *[]*heldSpan {
	if b, ok := p.p.Get().(*[]*heldSpan); ok {
		return b
	}
	b := make([]*heldSpan, 0, spanBufCap)
	return &b
}

func (p *spanBufPool) put(b *[]*heldSpan) {
	if b == nil || cap(*b) > maxPooledSpanBuf {
		return
	}
	clear(*b)
	*b = (*b)[:0]
	p.p.Put(b)
}

type entryPool struct{ p sync.Pool }

func (p *entryPool) get() *traceEntry {
	if e, ok := p.p.Get().(*traceEntry); ok {
		return e
	}
	return new(traceEntry)
}

func (p *entryPool) put(e *traceEntry) {
	*e = traceEntry{}
	p.p.Put(e)
}

var (
	spanBufs spanBufPool
	entries  entryPool
)

// evictOldest detaches the oldest pending trace of all shards, for an early
// decision. Shards are scanned from a rotating start, so that traces of
// equal age are taken from every shard in turn. It reports false when
// nothing is pending. Callers hold no shard lock.
func (k *ErrorKeeper) evictOldest() (victim, bool) {
	n := len(k.shards)
	for range 4 { // another goroutine may take the chosen trace first
		start := int(k.evictNext.Add(1))
		best, bestAge := -1, int64(noneHeld)
		for j := range n {
			i := (start + j) & (n - 1)
			if a := k.shards[i].oldest.Load(); a < bestAge {
				best, bestAge = i, a
			}
		}
		if best < 0 {
			return victim{}, false
		}
		sh := &k.shards[best]
		sh.mu.Lock()
		if e := sh.age.head; e != nil {
			v := sh.detach(e)
			sh.mu.Unlock()
			return v, true
		}
		sh.mu.Unlock()
	}
	return victim{}, false
}
