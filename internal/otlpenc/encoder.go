package otlpenc

import (
	"encoding/binary"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tracekeeper/tracekeeper/internal/mirror"
)

// Cache bounds. A process normally has one resource and a few dozen
// instrumentation scopes; when a cache outgrows its bound it is emptied at
// the start of the next Encode and refilled on demand.
const (
	maxCachedResources = 64
	maxCachedScopes    = 1024
)

// Result reports what happened to the input of one Encode call.
type Result struct {
	// Repaired counts the string values with invalid UTF-8 that were
	// repaired, once per occurrence in the output: a repaired resource
	// attribute is counted in every request that carries the resource.
	Repaired int
	// TooLarge counts the spans that were not encoded because a request
	// holding only that span would exceed maxBytes.
	TooLarge int
}

// Encoder encodes spans as OTLP ExportTraceServiceRequest protobuf bytes.
//
// The zero value is not usable; call NewEncoder. An Encoder keeps scratch
// space and envelope caches between calls and is not safe for concurrent
// use: keep one per goroutine or in a sync.Pool.
type Encoder struct {
	resources map[*resource.Resource]*resEntry
	scopes    map[scopeKey]*scopeEntry

	// Scratch space of one Encode call, kept for the next.
	recs        []spanRec
	resGroups   []resGroup
	scopeGroups []scopeGroup
	resIndex    map[attribute.Distinct]int32
	scopeIndex  map[scopeGroupKey]int32
	order       []int32   // encodable spans, as indices into recs, in output order
	reqs        []reqPlan // requests to write, as ranges of order
	runs        []int     // ScopeSpans body sizes of the resource being written

	// arena holds the batch's encoded Span fields in input order, after
	// headroom bytes left for the envelopes of a request that holds them
	// all: when the batch is one such request, the arena becomes its body.
	arena    []byte
	headroom int
	repairs  int // strings repaired since the counter was last reset
	memos    [memoAttrs]attrMemo
	name     string // the last span name found valid
}

// NewEncoder returns an Encoder with empty caches.
func NewEncoder() *Encoder {
	return &Encoder{
		resources:  make(map[*resource.Resource]*resEntry),
		scopes:     make(map[scopeKey]*scopeEntry),
		resIndex:   make(map[attribute.Distinct]int32),
		scopeIndex: make(map[scopeGroupKey]int32),
	}
}

// resEntry is the cached encoding of one *resource.Resource.
type resEntry struct {
	key     attribute.Distinct // grouping key, as the stock exporter uses
	field   []byte             // the ResourceSpans.resource field, tag included; empty for a nil resource
	schema  string             // ResourceSpans.schema_url, repaired
	repairs int
}

func (r *resEntry) envelope() int { return len(r.field) + sizeString(r.schema) }

// scopeKey finds a cached scope cheaply; the entry keeps the full Scope,
// which is compared before the entry is used.
type scopeKey struct {
	name, version, schemaURL string
	attrs                    attribute.Distinct
}

// scopeEntry is the cached encoding of one instrumentation.Scope.
type scopeEntry struct {
	scope   instrumentation.Scope
	field   []byte // the ScopeSpans.scope field, tag included; empty for the zero Scope
	schema  string // ScopeSpans.schema_url, repaired
	repairs int
}

func (s *scopeEntry) envelope() int { return len(s.field) + sizeString(s.schema) }

// resGroup is one ResourceSpans of the batch.
type resGroup struct {
	res         *resEntry
	first, last int32 // its scope groups, linked through scopeGroup.next
}

type scopeGroupKey struct {
	res   int32
	scope *scopeEntry
}

// scopeGroup is one ScopeSpans of the batch.
type scopeGroup struct {
	res        int32
	scope      *scopeEntry
	next       int32 // next scope group of the same resource, or -1
	head, tail int32 // its spans, linked through spanRec.next
}

// reqPlan is one request to write: order[from:to], size bytes in total.
type reqPlan struct {
	from, to int
	size     int
}

// Encode groups spans by resource and instrumentation scope as the stock
// OTLP exporter does and appends to out one or more Requests holding them.
//
// Resources appear in the order they are first seen in spans, scopes of a
// resource in the order they are first seen, and spans of a scope in input
// order. Nil spans are skipped.
//
// When maxBytes is positive no request is longer than maxBytes: a request
// is closed before the span that would take it over the limit and the next
// one starts with that span, under the same resource and scope envelopes.
// A span that does not fit even in a request of its own is left out and
// counted in Result.TooLarge. When maxBytes is zero or negative all spans go
// in one request.
//
// Invalid UTF-8 in any string is repaired and counted in Result.Repaired;
// it never fails the batch. Once Encode returns, the Encoder holds no
// reference to spans or their attributes; it keeps the resources and scopes
// it has cached.
func (e *Encoder) Encode(spans []sdktrace.ReadOnlySpan, maxBytes int, out []*Request) ([]*Request, Result) {
	var res Result
	if len(spans) == 0 {
		return out, res
	}
	defer e.reset()
	e.trimCaches()
	e.encodeSpans(spans)
	e.plan(maxBytes, &res)
	return e.write(out, &res), res
}

// trimCaches empties a cache that outgrew its bound. It runs only between
// batches so that every span of a batch sees the same entries.
func (e *Encoder) trimCaches() {
	if len(e.resources) > maxCachedResources {
		clear(e.resources)
	}
	if len(e.scopes) > maxCachedScopes {
		clear(e.scopes)
	}
}

// reset drops every reference to the caller's spans and keeps the capacity.
func (e *Encoder) reset() {
	e.recs = e.recs[:0]
	clear(e.resGroups)
	e.resGroups = e.resGroups[:0]
	clear(e.scopeGroups)
	e.scopeGroups = e.scopeGroups[:0]
	clear(e.resIndex)
	clear(e.scopeIndex)
	e.order = e.order[:0]
	e.reqs = e.reqs[:0]
	e.runs = e.runs[:0]
	if cap(e.arena) > maxPooledBody {
		e.arena = nil // do not keep the memory of one unusually big batch
	}
	e.arena = e.arena[:0]
	e.repairs = 0
	clear(e.memos[:])
	e.name = ""
}

// encodeSpans encodes every span into the arena, in one pass, and links
// it into its scope group.
func (e *Encoder) encodeSpans(spans []sdktrace.ReadOnlySpan) {
	e.recs = slices.Grow(e.recs, len(spans))
	b := e.arena[:0]
	var (
		prevRes   *resource.Resource
		prevScope instrumentation.Scope
		g         int32 = -1
	)
	var read spanData // a span that cannot be read in place
	for _, s := range spans {
		if s == nil {
			continue
		}
		d := mirror.SpanOf(s)
		if d == nil {
			mirror.ReadSpan(s, &read)
			d = &read
		}
		r, sc := d.Resource(), d.InstrumentationScope()
		// Spans of one batch nearly always share their resource pointer
		// and come in runs of one scope: skip the lookups for those.
		if g < 0 || r != prevRes || !sameScope(sc, &prevScope) {
			g = e.groupOf(r, *sc)
			prevRes, prevScope = r, *sc
		}
		if len(e.recs) == 0 {
			sg := &e.scopeGroups[g]
			e.headroom = 2*(1+binary.MaxVarintLen64) + len(e.resGroups[sg.res].res.field) + len(sg.scope.field)
			b = append(b, make([]byte, e.headroom)...)
		}
		i := int32(len(e.recs))
		off := len(b)
		e.repairs = 0
		b = e.appendSpan(b, d)
		// Field by field, as with the memos: a struct literal copied in
		// wider words than it was written stalls.
		e.recs = e.recs[:i+1] // grown above
		rec := &e.recs[i]
		rec.off, rec.end, rec.group, rec.next, rec.repairs = off, len(b), g, -1, e.repairs
		sg := &e.scopeGroups[g]
		if sg.head < 0 {
			sg.head = i
		} else {
			e.recs[sg.tail].next = i
		}
		sg.tail = i
	}
	e.arena = b
}

// sameScope reports whether *a == *b. Spans of one tracer carry copies of
// one Scope, whose strings lie at the same addresses and whose attribute
// sets hold the same words: those are compared first.
func sameScope(a, b *instrumentation.Scope) bool {
	if sameString(a.Name, b.Name) && sameString(a.Version, b.Version) && sameString(a.SchemaURL, b.SchemaURL) &&
		sameSetWords(&a.Attributes, &b.Attributes) {
		return true
	}
	return *a == *b
}

// setData mirrors attribute.Set, for sameSetWords; it is used only if the
// layouts match (setsInPlace).
type setData struct {
	hash uint64
	data any
}

var setsInPlace = mirror.Matches(reflect.TypeFor[attribute.Set](), reflect.TypeFor[setData]())

// sameSetWords reports whether a and b are word for word the same: the
// same hash and the same pointer to the same immutable attributes, which
// implies they are equal. False says nothing.
func sameSetWords(a, b *attribute.Set) bool {
	if !setsInPlace {
		return false
	}
	x, y := (*setData)(unsafe.Pointer(a)), (*setData)(unsafe.Pointer(b))
	return x.hash == y.hash && *(*[2]unsafe.Pointer)(unsafe.Pointer(&x.data)) == *(*[2]unsafe.Pointer)(unsafe.Pointer(&y.data))
}

// groupOf returns the scope group of spans with resource r and scope sc,
// creating the groups on first sight.
func (e *Encoder) groupOf(r *resource.Resource, sc instrumentation.Scope) int32 {
	re := e.resource(r)
	rg, ok := e.resIndex[re.key]
	if !ok {
		rg = int32(len(e.resGroups))
		e.resGroups = append(e.resGroups, resGroup{res: re, first: -1, last: -1})
		e.resIndex[re.key] = rg
	}
	se := e.scope(sc)
	k := scopeGroupKey{res: rg, scope: se}
	g, ok := e.scopeIndex[k]
	if !ok {
		g = int32(len(e.scopeGroups))
		e.scopeGroups = append(e.scopeGroups, scopeGroup{res: rg, scope: se, next: -1, head: -1, tail: -1})
		e.scopeIndex[k] = g
		if rgp := &e.resGroups[rg]; rgp.first < 0 {
			rgp.first = g
			rgp.last = g
		} else {
			e.scopeGroups[rgp.last].next = g
			rgp.last = g
		}
	}
	return g
}

// resource returns the cached encoding of r, encoding it on a miss.
func (e *Encoder) resource(r *resource.Resource) *resEntry {
	if re, ok := e.resources[r]; ok {
		return re
	}
	e.repairs = 0
	re := &resEntry{key: r.Equivalent()}
	if r != nil {
		re.field = e.encodeEnvelope(tagRSResource, nil, tagResourceAttributes, r.Attributes())
	}
	re.schema = e.str(r.SchemaURL())
	re.repairs = e.repairs
	e.resources[r] = re
	return re
}

// scope returns the cached encoding of sc, encoding it on a miss.
func (e *Encoder) scope(sc instrumentation.Scope) *scopeEntry {
	k := scopeKey{name: sc.Name, version: sc.Version, schemaURL: sc.SchemaURL, attrs: sc.Attributes.Equivalent()}
	if se, ok := e.scopes[k]; ok && se.scope == sc {
		return se
	}
	e.repairs = 0
	se := &scopeEntry{scope: sc}
	if sc != (instrumentation.Scope{}) {
		var head []byte
		head = appendStringOpt(head, tagScopeName, e.str(sc.Name))
		head = appendStringOpt(head, tagScopeVersion, e.str(sc.Version))
		se.field = e.encodeEnvelope(tagSSScope, head, tagScopeAttributes, sc.Attributes.ToSlice())
	}
	se.schema = e.str(sc.SchemaURL)
	se.repairs = e.repairs
	if _, taken := e.scopes[k]; !taken {
		// On the (astronomically unlikely) clash of two different scopes
		// with one key, the first keeps the slot and the other is encoded
		// per batch.
		e.scopes[k] = se
	}
	return se
}

// encodeEnvelope encodes a message made of the encoded fields in head
// followed by attrs as repeated KeyValue fields tagged attrTag, and returns
// it as a field tagged tag. It runs on cache misses only and allocates.
func (e *Encoder) encodeEnvelope(tag byte, head []byte, attrTag byte, attrs []attribute.KeyValue) []byte {
	b := append(make([]byte, 0, 64), tag, 0)
	b = append(b, head...)
	b = e.appendKVs(b, attrTag, attrs)
	return endLen(b, 2, 1)
}

// str returns s, or s repaired to valid UTF-8, which it counts. ASCII
// strings, nearly all of them, cost one pass of word-wide ORs.
func (e *Encoder) str(s string) string {
	if ascii(s) {
		return s
	}
	return e.repair(s)
}

// repair is str for strings that are not all ASCII.
func (e *Encoder) repair(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	e.repairs++
	return strings.ToValidUTF8(s, string(utf8.RuneError))
}

// planState tracks the size of the request being planned: closed holds the
// ResourceSpans fields already complete, rsBody the open ResourceSpans
// without its open ScopeSpans, ssBody the open ScopeSpans.
type planState struct {
	closed int
	rg, sg int32
	rsBody int
	ssBody int
	spans  int
}

var emptyPlan = planState{rg: -1, sg: -1}

func (p planState) total() int {
	if p.rg < 0 {
		return p.closed
	}
	return p.closed + sizeLen(p.rsBody+sizeLen(p.ssBody))
}

// add returns the state after a span field of n bytes in scope group sg.
func (e *Encoder) add(p planState, sg int32, n int) planState {
	rg := e.scopeGroups[sg].res
	if p.rg != rg {
		p.closed = p.total()
		p.rg, p.sg = rg, -1
		p.rsBody = e.resGroups[rg].res.envelope()
	}
	if p.sg != sg {
		if p.sg >= 0 {
			p.rsBody += sizeLen(p.ssBody)
		}
		p.sg = sg
		p.ssBody = e.scopeGroups[sg].scope.envelope()
	}
	p.ssBody += n
	p.spans++
	return p
}

// plan cuts the encoded spans, in output order, into requests of at most
// maxBytes.
func (e *Encoder) plan(maxBytes int, res *Result) {
	// A batch that fits in one request, the usual case, is planned as if
	// there were no limit: sizes only grow as spans are added, so no
	// request would be closed and no span left out.
	if e.planOne(); maxBytes <= 0 || len(e.reqs) == 0 || e.reqs[0].size <= maxBytes {
		return
	}
	e.order, e.reqs = e.order[:0], e.reqs[:0]
	cur, from := emptyPlan, 0
	for rg := range e.resGroups {
		for g := e.resGroups[rg].first; g >= 0; g = e.scopeGroups[g].next {
			for i := e.scopeGroups[g].head; i >= 0; i = e.recs[i].next {
				n := e.recs[i].end - e.recs[i].off
				next := e.add(cur, g, n)
				if next.total() > maxBytes {
					if cur.spans > 0 {
						e.reqs = append(e.reqs, reqPlan{from: from, to: len(e.order), size: cur.total()})
						cur, from = emptyPlan, len(e.order)
						next = e.add(cur, g, n)
					}
					if next.total() > maxBytes {
						res.TooLarge++
						continue
					}
				}
				cur = next
				e.order = append(e.order, i)
			}
		}
	}
	if cur.spans > 0 {
		e.reqs = append(e.reqs, reqPlan{from: from, to: len(e.order), size: cur.total()})
	}
}

// planOne plans every span into one request, whatever its size.
func (e *Encoder) planOne() {
	total := 0
	for rg := range e.resGroups {
		rsBody := e.resGroups[rg].res.envelope()
		for g := e.resGroups[rg].first; g >= 0; g = e.scopeGroups[g].next {
			ssBody := e.scopeGroups[g].scope.envelope()
			for i := e.scopeGroups[g].head; i >= 0; i = e.recs[i].next {
				ssBody += e.recs[i].end - e.recs[i].off
				e.order = append(e.order, i)
			}
			rsBody += sizeLen(ssBody)
		}
		total += sizeLen(rsBody)
	}
	if len(e.order) > 0 {
		e.reqs = append(e.reqs, reqPlan{from: 0, to: len(e.order), size: total})
	}
}

// write builds the planned requests: the arena itself when the batch is
// one request of one resource and scope, pooled copies otherwise.
func (e *Encoder) write(out []*Request, res *Result) []*Request {
	if len(e.reqs) == 1 && len(e.scopeGroups) == 1 && len(e.order) == len(e.recs) {
		return append(out, e.writeArena(res))
	}
	for _, rp := range e.reqs {
		r := newRequest(rp.size)
		b := r.body
		for i := rp.from; i < rp.to; {
			rg := e.scopeGroups[e.recs[e.order[i]].group].res
			re := e.resGroups[rg].res
			// Measure this resource's run of scope groups.
			e.runs = e.runs[:0]
			rsBody := re.envelope()
			j := i
			for j < rp.to {
				g := e.recs[e.order[j]].group
				if e.scopeGroups[g].res != rg {
					break
				}
				ssBody := e.scopeGroups[g].scope.envelope()
				for ; j < rp.to && e.recs[e.order[j]].group == g; j++ {
					rec := &e.recs[e.order[j]]
					ssBody += rec.end - rec.off
				}
				e.runs = append(e.runs, ssBody)
				rsBody += sizeLen(ssBody)
			}
			b = appendLen(b, tagRequestResourceSpans, rsBody)
			b = append(b, re.field...)
			res.Repaired += re.repairs
			for _, ssBody := range e.runs {
				g := e.recs[e.order[i]].group
				se := e.scopeGroups[g].scope
				b = appendLen(b, tagRSScopeSpans, ssBody)
				b = append(b, se.field...)
				res.Repaired += se.repairs
				// Copy runs of spans that lie next to each other in the
				// arena at once.
				from, to := 0, 0
				for ; i < j && e.recs[e.order[i]].group == g; i++ {
					rec := &e.recs[e.order[i]]
					if rec.off != to {
						b = append(b, e.arena[from:to]...)
						from = rec.off
					}
					to = rec.end
					res.Repaired += rec.repairs
				}
				b = append(b, e.arena[from:to]...)
				b = appendStringOpt(b, tagSSSchemaURL, se.schema)
			}
			b = appendStringOpt(b, tagRSSchemaURL, re.schema)
		}
		r.body = b
		r.spans = rp.to - rp.from
		out = append(out, r)
	}
	return out
}

// writeArena turns the arena, which holds every span of the only request
// and scope group in order, into that request: the envelopes go in the
// headroom in front of the spans, the schema URLs after them, and a pooled
// buffer becomes the next arena.
func (e *Encoder) writeArena(res *Result) *Request {
	sg := &e.scopeGroups[0]
	re, se := e.resGroups[0].res, sg.scope
	ssBody := se.envelope() + len(e.arena) - e.headroom
	rsBody := re.envelope() + sizeLen(ssBody)
	start := e.headroom - (1 + sizeVarint(uint64(rsBody)) + len(re.field) + 1 + sizeVarint(uint64(ssBody)) + len(se.field))
	h := e.arena[start:start]
	h = appendLen(h, tagRequestResourceSpans, rsBody)
	h = append(h, re.field...)
	h = appendLen(h, tagRSScopeSpans, ssBody)
	_ = append(h, se.field...) // ends at e.headroom, inside the arena
	b := appendStringOpt(e.arena, tagSSSchemaURL, se.schema)
	b = appendStringOpt(b, tagRSSchemaURL, re.schema)
	res.Repaired += re.repairs + se.repairs
	for i := range e.recs {
		res.Repaired += e.recs[i].repairs
	}
	if n := len(b) - start; cap(b) > minTrimmed && n <= cap(b)/4 {
		// A small request in an arena grown by bigger ones: it gets a
		// buffer of its size, so that what waits in a queue holds about
		// what it carries, and the arena stays for the next batch.
		r := newRequest(n)
		r.body, r.spans = append(r.body, b[start:]...), len(e.recs)
		e.arena = b[:0]
		return r
	}
	r := requests.get()
	e.arena = r.body[:0]
	if cap(e.arena) < len(b) && cap(b) <= maxPooledBody {
		// A buffer that would have to grow span by span: replace it at once.
		e.arena = make([]byte, 0, cap(b))
	}
	r.body, r.start, r.spans = b, start, len(e.recs)
	return r
}

// minTrimmed is the arena size above which a request that uses at most a
// quarter of it is copied out (see writeArena), and the largest buffer
// slack a pooled request may bring to a small one (see newRequest).
const minTrimmed = 16 << 10
