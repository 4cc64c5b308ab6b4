package otlpenc

import (
	"slices"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
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

	// The size pass pushes the length of every nested message and every
	// value it had to materialise (repaired strings, slice attributes); the
	// write pass, which visits the same values in the same order, pops them.
	sizes    []int
	sizeCur  int
	side     []sideValue
	sideCur  int
	repairs  int  // strings repaired since the counter was last reset
	checking bool // the span being written has repaired strings
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

// sideValue is a value the size pass materialised for the write pass.
// Exactly one field is set.
type sideValue struct {
	str    string // a repaired string
	bools  []bool
	ints   []int64
	floats []float64
	strs   []string
	vals   []attribute.Value
	kvs    []attribute.KeyValue
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
	e.group(spans)
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
	clear(e.recs)
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
	e.resetScratch()
}

func (e *Encoder) resetScratch() {
	e.sizes = e.sizes[:0]
	e.sizeCur = 0
	clear(e.side)
	e.side = e.side[:0]
	e.sideCur = 0
	e.repairs = 0
	e.checking = false
}

// group records every span and links it into its scope group.
func (e *Encoder) group(spans []sdktrace.ReadOnlySpan) {
	e.recs = slices.Grow(e.recs, len(spans))
	var (
		prevRes   *resource.Resource
		prevScope instrumentation.Scope
		g         int32 = -1
	)
	for _, s := range spans {
		if s == nil {
			continue
		}
		r, sc := s.Resource(), s.InstrumentationScope()
		// Spans of one batch nearly always share their resource pointer
		// and come in runs of one scope: skip the lookups for those.
		if g < 0 || r != prevRes || sc != prevScope {
			g = e.groupOf(r, sc)
			prevRes, prevScope = r, sc
		}
		i := int32(len(e.recs))
		e.recs = e.recs[:i+1] // capacity reserved above; fill sets every field
		rec := &e.recs[i]
		rec.fill(s)
		rec.group, rec.next = g, -1
		sg := &e.scopeGroups[g]
		if sg.head < 0 {
			sg.head = i
		} else {
			e.recs[sg.tail].next = i
		}
		sg.tail = i
	}
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
	re := &resEntry{key: r.Equivalent()}
	if r != nil {
		re.field = e.encodeEnvelope(tagRSResource, nil, tagResourceAttributes, r.Attributes())
	}
	re.schema = e.str(r.SchemaURL())
	re.repairs = e.repairs
	e.resetScratch()
	e.resources[r] = re
	return re
}

// scope returns the cached encoding of sc, encoding it on a miss.
func (e *Encoder) scope(sc instrumentation.Scope) *scopeEntry {
	k := scopeKey{name: sc.Name, version: sc.Version, schemaURL: sc.SchemaURL, attrs: sc.Attributes.Equivalent()}
	if se, ok := e.scopes[k]; ok && se.scope == sc {
		return se
	}
	se := &scopeEntry{scope: sc}
	if sc != (instrumentation.Scope{}) {
		var head []byte
		head = appendStringOpt(head, tagScopeName, e.str(sc.Name))
		head = appendStringOpt(head, tagScopeVersion, e.str(sc.Version))
		se.field = e.encodeEnvelope(tagSSScope, head, tagScopeAttributes, sc.Attributes.ToSlice())
	}
	se.schema = e.str(sc.SchemaURL)
	se.repairs = e.repairs
	e.resetScratch()
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
// it as a field tagged tag. It runs on cache misses only and may allocate.
func (e *Encoder) encodeEnvelope(tag byte, head []byte, attrTag byte, attrs []attribute.KeyValue) []byte {
	sizeMark, sideMark, repairs := len(e.sizes), len(e.side), e.repairs
	n := len(head)
	for i := range attrs {
		n += sizeLen(e.sizeKV(&attrs[i]))
	}
	b := make([]byte, 0, sizeLen(n))
	b = appendLen(b, tag, n)
	b = append(b, head...)
	e.sizeCur, e.sideCur, e.checking = sizeMark, sideMark, e.repairs > repairs
	for i := range attrs {
		b = e.appendKV(b, attrTag, &attrs[i])
	}
	return b
}

// str returns s, or s repaired to valid UTF-8, which it then remembers for
// the write pass and counts.
func (e *Encoder) str(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, string(utf8.RuneError))
	e.side = append(e.side, sideValue{str: s})
	e.repairs++
	return s
}

// wstr is str for the write pass: it returns the repaired string the size
// pass remembered. Strings are checked only in spans that had repairs.
func (e *Encoder) wstr(s string) string {
	if e.checking && !utf8.ValidString(s) {
		s = e.side[e.sideCur].str
		e.sideCur++
	}
	return s
}

// pushSize reserves a slot for the size of a nested message.
func (e *Encoder) pushSize() int {
	e.sizes = append(e.sizes, 0)
	return len(e.sizes) - 1
}

// popSize returns the next size recorded by the size pass.
func (e *Encoder) popSize() int {
	n := e.sizes[e.sizeCur]
	e.sizeCur++
	return n
}

// popSide returns the next value recorded by the size pass.
func (e *Encoder) popSide() *sideValue {
	v := &e.side[e.sideCur]
	e.sideCur++
	return v
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

// plan runs the size pass over every span in output order and cuts the
// sequence into requests of at most maxBytes.
func (e *Encoder) plan(maxBytes int, res *Result) {
	cur, from := emptyPlan, 0
	for rg := range e.resGroups {
		for g := e.resGroups[rg].first; g >= 0; g = e.scopeGroups[g].next {
			for i := e.scopeGroups[g].head; i >= 0; i = e.recs[i].next {
				rec := &e.recs[i]
				sizeMark, sideMark := len(e.sizes), len(e.side)
				e.repairs = 0
				rec.size = e.sizeSpan(rec)
				rec.repairs = e.repairs
				next := e.add(cur, g, sizeLen(rec.size))
				if maxBytes > 0 && next.total() > maxBytes {
					if cur.spans > 0 {
						e.reqs = append(e.reqs, reqPlan{from: from, to: len(e.order), size: cur.total()})
						cur, from = emptyPlan, len(e.order)
						next = e.add(cur, g, sizeLen(rec.size))
					}
					if next.total() > maxBytes {
						res.TooLarge++
						e.sizes = e.sizes[:sizeMark]
						clear(e.side[sideMark:])
						e.side = e.side[:sideMark]
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

// write runs the write pass, one pooled Request per planned request.
func (e *Encoder) write(out []*Request, res *Result) []*Request {
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
					ssBody += sizeLen(e.recs[e.order[j]].size)
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
				for ; i < j && e.recs[e.order[i]].group == g; i++ {
					rec := &e.recs[e.order[i]]
					b = appendLen(b, tagSSSpans, rec.size)
					e.checking = rec.repairs > 0
					b = e.appendSpan(b, rec)
					res.Repaired += rec.repairs
				}
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
