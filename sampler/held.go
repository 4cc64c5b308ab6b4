package sampler

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracekeeper/tracekeeper/internal/mirror"
)

// heldSpan is the sampler's own copy of a recorded-only span, made when the
// span is held. A string the span recorded may point into a larger
// allocation that the string alone keeps alive: the SDK shortens a value
// over AttributeValueLengthLimit by slicing it, a user may record the
// first bytes of a request body, a tracestate member points into the
// header it was parsed from. Holding the SDK's record would hold all of
// that, uncounted. The copy shares no string with the record: names, keys,
// values (string slices, slices and maps included), the status
// description, events, links and trace states are copied into memory the
// copy owns, so that the bytes it keeps alive are the bytes it counts.
//
// Only the resource and the instrumentation scope are shared with the
// record: they belong to the provider and its tracers, not to the span.
//
// A copy is immutable once filled. The copies of released spans are
// recycled, their buffers reused, unless a predicate may have kept a
// reference to them; the copies of kept spans are handed downstream and
// never recycled.
type heldSpan struct {
	// The embedded interface is nil: it supplies only the SDK's unexported
	// method. Every exported method is defined on heldSpan.
	sdktrace.ReadOnlySpan

	name          string
	sc, parent    trace.SpanContext
	kind          trace.SpanKind
	start, end    time.Time
	attrs         attrRecords
	events        []sdktrace.Event
	links         []sdktrace.Link
	status        sdktrace.Status
	scope         instrumentation.Scope
	res           *resource.Resource
	childSpans    int
	droppedAttrs  int
	droppedEvents int
	droppedLinks  int

	// size is what the copy keeps alive, in bytes (see fill).
	size int64

	// Owned memory. text holds the bytes of every string above and the
	// span's attribute records; kvs the attributes of its events and its
	// links, one group after another; boxed the values of the span's
	// attributes that hold an array (slices and maps). Their capacity is
	// reserved before anything is copied, so that appending never moves
	// what earlier strings point into.
	text  []byte
	kvs   []attribute.KeyValue
	boxed []attribute.Value

	// ts is the copy of the latest trace state this value copied, reused
	// while the spans it holds carry an equal one: the spans of a trace
	// share theirs.
	ts trace.TraceState
}

var _ sdktrace.ReadOnlySpan = (*heldSpan)(nil)

func (h *heldSpan) Name() string                                { return h.name }
func (h *heldSpan) SpanContext() trace.SpanContext              { return h.sc }
func (h *heldSpan) Parent() trace.SpanContext                   { return h.parent }
func (h *heldSpan) SpanKind() trace.SpanKind                    { return h.kind }
func (h *heldSpan) StartTime() time.Time                        { return h.start }
func (h *heldSpan) EndTime() time.Time                          { return h.end }
func (h *heldSpan) Links() []sdktrace.Link                      { return h.links }
func (h *heldSpan) Events() []sdktrace.Event                    { return h.events }
func (h *heldSpan) Status() sdktrace.Status                     { return h.status }
func (h *heldSpan) InstrumentationScope() instrumentation.Scope { return h.scope }
func (h *heldSpan) Resource() *resource.Resource                { return h.res }
func (h *heldSpan) DroppedAttributes() int                      { return h.droppedAttrs }
func (h *heldSpan) DroppedLinks() int                           { return h.droppedLinks }
func (h *heldSpan) DroppedEvents() int                          { return h.droppedEvents }
func (h *heldSpan) ChildSpanCount() int                         { return h.childSpans }

// Attributes returns the span's attributes in a new slice.
func (h *heldSpan) Attributes() []attribute.KeyValue { return h.attributes(0) }

// InstrumentationLibrary is the deprecated name of InstrumentationScope,
// still part of sdktrace.ReadOnlySpan.
func (h *heldSpan) InstrumentationLibrary() instrumentation.Library { //nolint:staticcheck // part of sdktrace.ReadOnlySpan
	return h.scope
}

// Sizes the copies are counted with.
var (
	heldSpanBytes = allocSize(unsafe.Sizeof(heldSpan{}))
	kvBytes       = int64(unsafe.Sizeof(attribute.KeyValue{}))
	valueBytes    = int64(unsafe.Sizeof(attribute.Value{}))
	eventBytes    = int64(unsafe.Sizeof(sdktrace.Event{}))
	linkBytes     = int64(unsafe.Sizeof(sdktrace.Link{}))
	stringBytes   = int64(unsafe.Sizeof(""))
)

// allocSize is the size of the block the allocator gives for an object of
// n bytes: growing a slice rounds its new array up to that size.
func allocSize(n uintptr) int64 { return int64(cap(slices.Grow([]byte(nil), int(n)))) }

const (
	spanSlotBytes    = 8  // a slot of a trace's span buffer
	boxBytes         = 16 // the interface box of a slice or map value
	traceMemberBytes = 64 // one tracestate list member (32 B), with the list's growth, and its separators
)

// dataOf returns the data of s: the SDK's record read in place, whose
// accessors would each copy the whole record, or for any other span what
// its methods return, read into buf.
func dataOf(s sdktrace.ReadOnlySpan, buf *mirror.Span) *mirror.Span {
	if d := mirror.KnownSpan(s); d != nil {
		return d
	}
	if d := mirror.SpanOf(s); d != nil {
		return d
	}
	mirror.ReadSpan(s, buf)
	return buf
}

// fill copies the span s into h and sets h.size. sc and status are the
// span's, read by the caller already. Every field but the trace state
// kept for reuse is set anew.
func (h *heldSpan) fill(s *mirror.Span, sc trace.SpanContext, status sdktrace.Status) {
	name, attrs, evs, lks := s.Name(), s.Attributes(), s.Events(), s.Links()

	// Reserve what the copies need first, so that filling never moves
	// the memory earlier copies point into.
	text := len(name) + len(status.Description) + recordsText(attrs)
	kvs, boxed := 0, boxedOf(attrs)
	for i := range evs {
		text += len(evs[i].Name) + textOf(evs[i].Attributes)
		kvs += len(evs[i].Attributes)
	}
	for i := range lks {
		text += textOf(lks[i].Attributes)
		kvs += len(lks[i].Attributes)
	}
	h.text = reserve(h.text, text, maxPooledText, minPooledText)
	h.kvs = reserve(h.kvs, kvs, maxPooledKVs, minPooledKVs)
	h.boxed = reserve(h.boxed, boxed, maxPooledKVs, minPooledKVs)
	h.size = heldSpanBytes + int64(cap(h.text)) + kvBytes*int64(cap(h.kvs)) + valueBytes*int64(cap(h.boxed))

	h.name = h.str(name)
	h.sc, h.parent = sc, *s.Parent()
	h.ownContext(&h.sc)
	h.ownContext(&h.parent)
	h.kind = s.SpanKind()
	h.start, h.end = s.StartTime(), s.EndTime()
	h.attrs = h.records(attrs)
	h.status = sdktrace.Status{Code: status.Code, Description: h.str(status.Description)}
	h.scope = *s.InstrumentationScope()
	h.res = s.Resource()
	h.childSpans = s.ChildSpanCount()
	h.droppedAttrs, h.droppedEvents, h.droppedLinks = s.DroppedAttributes(), s.DroppedEvents(), s.DroppedLinks()

	h.events = nil
	if evs != nil {
		h.events = slices.Grow([]sdktrace.Event(nil), len(evs))[:len(evs)]
		h.size += eventBytes * int64(cap(h.events))
		for i := range evs {
			ev := &evs[i]
			h.events[i] = sdktrace.Event{
				Name: h.str(ev.Name), Attributes: h.keyValues(ev.Attributes),
				DroppedAttributeCount: ev.DroppedAttributeCount, Time: ev.Time,
			}
		}
	}
	h.links = nil
	if lks != nil {
		h.links = slices.Grow([]sdktrace.Link(nil), len(lks))[:len(lks)]
		h.size += linkBytes * int64(cap(h.links))
		for i := range lks {
			lk := &lks[i]
			h.links[i] = sdktrace.Link{
				SpanContext: lk.SpanContext, Attributes: h.keyValues(lk.Attributes),
				DroppedAttributeCount: lk.DroppedAttributeCount,
			}
			h.ownContext(&h.links[i].SpanContext)
		}
	}
}

// attrRecords locates a copy's attribute records in its text. A record is
// the value's type (1 byte), the key's length (4 bytes, little-endian), a
// payload (8 bytes: a string's length, a scalar's bits, or the index in
// boxed of a value that holds an array), the key, and for a string the
// value. Records hold no pointer, so the collector does not scan them,
// and take 13 bytes besides the strings, where an attribute.KeyValue
// takes 64.
type attrRecords struct {
	lo, hi, n int32 // bytes of text, and number of attributes
	isNil     bool  // the recorded attributes were nil, not empty
}

const recordHeader = 1 + 4 + 8

// recordsText is the number of bytes of text the records of kvs take,
// with the strings of their boxed values.
func recordsText(kvs []attribute.KeyValue) int {
	n := 0
	for i := range kvs {
		n += recordHeader + len(kvs[i].Key) + valueText(&kvs[i].Value)
	}
	return n
}

// boxedOf is the number of kvs whose value holds an array.
func boxedOf(kvs []attribute.KeyValue) int {
	n := 0
	for i := range kvs {
		if kvs[i].Value.Type() > attribute.STRING {
			n++
		}
	}
	return n
}

// records writes the records of src into h.text.
func (h *heldSpan) records(src []attribute.KeyValue) attrRecords {
	// Boxed values first: their strings are copied into text, which the
	// records must follow without a gap.
	first := len(h.boxed)
	for i := range src {
		if src[i].Value.Type() > attribute.STRING {
			h.boxed = append(h.boxed, h.value(src[i].Value))
		}
	}
	r := attrRecords{lo: int32(len(h.text)), n: int32(len(src)), isNil: src == nil}
	box := uint64(first)
	text := h.text
	for i := range src {
		kv := &src[i]
		t := kv.Value.Type()
		var payload uint64
		switch t {
		case attribute.STRING:
			payload = uint64(len(kv.Value.AsString()))
		case attribute.BOOL:
			if kv.Value.AsBool() {
				payload = 1
			}
		case attribute.INT64:
			payload = uint64(kv.Value.AsInt64())
		case attribute.FLOAT64:
			payload = math.Float64bits(kv.Value.AsFloat64())
		case attribute.EMPTY:
		default:
			payload = box
			box++
		}
		text = append(text, byte(t))
		text = binary.LittleEndian.AppendUint32(text, uint32(len(kv.Key)))
		text = binary.LittleEndian.AppendUint64(text, payload)
		text = append(text, kv.Key...)
		if t == attribute.STRING {
			text = append(text, kv.Value.AsString()...)
		}
	}
	h.text = text
	r.hi = int32(len(text))
	return r
}

// attributes decodes the span's attribute records into a new slice, with
// room for extra more. Its strings point into h.text.
func (h *heldSpan) attributes(extra int) []attribute.KeyValue {
	r := h.attrs
	if r.n == 0 && extra == 0 {
		if r.isNil {
			return nil
		}
		return []attribute.KeyValue{}
	}
	out := make([]attribute.KeyValue, r.n, int(r.n)+extra)
	rec := h.text[r.lo:r.hi]
	for i := range out {
		t := attribute.Type(rec[0])
		key := int(binary.LittleEndian.Uint32(rec[1:]))
		payload := binary.LittleEndian.Uint64(rec[5:])
		rec = rec[recordHeader:]
		out[i].Key = attribute.Key(bytesString(rec[:key]))
		rec = rec[key:]
		switch t {
		case attribute.STRING:
			out[i].Value = attribute.StringValue(bytesString(rec[:payload]))
			rec = rec[payload:]
		case attribute.BOOL:
			out[i].Value = attribute.BoolValue(payload != 0)
		case attribute.INT64:
			out[i].Value = attribute.Int64Value(int64(payload))
		case attribute.FLOAT64:
			out[i].Value = attribute.Float64Value(math.Float64frombits(payload))
		case attribute.EMPTY:
		default:
			out[i].Value = h.boxed[payload]
		}
	}
	return out
}

// bytesString returns the string b holds, without copying.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// textOf is the number of string bytes that attributes reference, in keys
// and in values of every type.
func textOf(kvs []attribute.KeyValue) int {
	n := 0
	for i := range kvs {
		n += len(kvs[i].Key) + valueText(&kvs[i].Value)
	}
	return n
}

// valueText is the number of string bytes a value references. Slice and
// map values are read through their As… accessors, which copy the
// elements: rare attributes pay for that.
func valueText(v *attribute.Value) int {
	switch v.Type() {
	case attribute.STRING:
		return len(v.AsString())
	case attribute.STRINGSLICE:
		n := 0
		for _, s := range v.AsStringSlice() {
			n += len(s)
		}
		return n
	case attribute.SLICE:
		n := 0
		vs := v.AsSlice()
		for i := range vs {
			n += valueText(&vs[i])
		}
		return n
	case attribute.MAP:
		return textOf(v.AsMap())
	}
	return 0
}

// str copies s into h.text.
func (h *heldSpan) str(s string) string {
	if len(s) == 0 {
		return ""
	}
	n := len(h.text)
	if cap(h.text)-n < len(s) {
		// Not reserved by fill; not expected, and still owned.
		h.size += int64(len(s))
		return strings.Clone(s)
	}
	h.text = append(h.text, s...)
	return bytesString(h.text[n:])
}

// keyValues copies attributes into the next group of h.kvs. A nil or empty
// group stays nil or empty.
func (h *heldSpan) keyValues(src []attribute.KeyValue) []attribute.KeyValue {
	if len(src) == 0 {
		if src == nil {
			return nil
		}
		return []attribute.KeyValue{}
	}
	first, n := len(h.kvs), len(src)
	if cap(h.kvs)-first < n {
		// Not reserved by fill; not expected: a group of its own.
		h.kvs = make([]attribute.KeyValue, 0, n)
		h.size += kvBytes * int64(cap(h.kvs))
		first = 0
	}
	h.kvs = h.kvs[:first+n]
	dst := h.kvs[first : first+n : first+n]
	for i := range src {
		kv, d := &src[i], &dst[i]
		d.Key = attribute.Key(h.str(string(kv.Key)))
		switch t := kv.Value.Type(); {
		case t == attribute.STRING:
			d.Value = attribute.StringValue(h.str(kv.Value.AsString()))
		case t < attribute.STRING: // bool, int64, float64: nothing referenced
			d.Value = kv.Value
		default:
			d.Value = h.value(kv.Value)
		}
	}
	return dst
}

// value copies an attribute value. Scalars reference nothing. The arrays
// of bool, int64 and float64 slices and the string of a byte slice are
// made by the attribute package for the value alone (ByteSliceValue
// copies its bytes), and are kept and counted as they are. The strings of
// string slices, slices and maps are copied into h.text, their arrays
// made anew.
func (h *heldSpan) value(v attribute.Value) attribute.Value {
	switch v.Type() {
	case attribute.STRING:
		return attribute.StringValue(h.str(v.AsString()))
	case attribute.BOOLSLICE:
		h.size += boxBytes + int64(len(v.AsBoolSlice()))
	case attribute.INT64SLICE:
		h.size += boxBytes + 8*int64(len(v.AsInt64Slice()))
	case attribute.FLOAT64SLICE:
		h.size += boxBytes + 8*int64(len(v.AsFloat64Slice()))
	case attribute.BYTESLICE:
		h.size += int64(len(v.AsString()))
	case attribute.STRINGSLICE:
		ss := v.AsStringSlice()
		for i := range ss {
			ss[i] = h.str(ss[i])
		}
		h.size += boxBytes + stringBytes*int64(len(ss))
		return attribute.StringSliceValue(ss)
	case attribute.SLICE:
		vs := v.AsSlice()
		for i := range vs {
			vs[i] = h.value(vs[i])
		}
		h.size += boxBytes + valueBytes*int64(len(vs))
		return attribute.SliceValue(vs...)
	case attribute.MAP:
		kvs := v.AsMap()
		for i := range kvs {
			kvs[i] = attribute.KeyValue{Key: attribute.Key(h.str(string(kvs[i].Key))), Value: h.value(kvs[i].Value)}
		}
		h.size += boxBytes + kvBytes*int64(len(kvs))
		return attribute.MapValue(kvs...)
	}
	return v
}

// ownContext gives sc a trace state of its own.
func (h *heldSpan) ownContext(sc *trace.SpanContext) {
	if sc.TraceState().Len() == 0 {
		// An empty state may still hold the array of a deleted member.
		*sc = sc.WithTraceState(trace.TraceState{})
		return
	}
	*sc = sc.WithTraceState(h.traceState(sc.TraceState()))
}

// traceState returns a copy of ts, which is not empty.
func (h *heldSpan) traceState(ts trace.TraceState) trace.TraceState {
	h.size += traceStateBytes(ts)
	if !sameTraceState(ts, h.ts) {
		// String builds a new string; the members parsed from it point
		// into that string only.
		owned, err := trace.ParseTraceState(ts.String())
		if err != nil {
			// Not a state the trace package would have built: keep it as
			// it is rather than lose it.
			return ts
		}
		h.ts = owned
	}
	return h.ts
}

// sameTraceState reports whether a and b have the same members in the same
// order.
func sameTraceState(a, b trace.TraceState) bool {
	n := a.Len()
	if n != b.Len() || n > maxTraceStateMembers {
		return false
	}
	var keys, vals [maxTraceStateMembers]string
	i := 0
	b.Walk(func(k, v string) bool {
		keys[i], vals[i] = k, v
		i++
		return true
	})
	i = 0
	same := true
	a.Walk(func(k, v string) bool {
		same = k == keys[i] && v == vals[i]
		i++
		return same
	})
	return same
}

// maxTraceStateMembers is the most members a trace state holds (W3C Trace
// Context).
const maxTraceStateMembers = 32

// traceStateBytes is what a copy of ts keeps alive: its member list and the
// string the members point into.
func traceStateBytes(ts trace.TraceState) int64 {
	var n int64
	ts.Walk(func(k, v string) bool {
		n += traceMemberBytes + int64(len(k)+len(v))
		return true
	})
	return n
}

// A copy's buffers are replaced, when it is filled, if they are larger
// than these, or more than four times what the span needs and larger than
// typical spans need: a pooled copy that a large span grew would otherwise
// count its size for every small span after it.
const (
	maxPooledText = 4 << 10
	maxPooledKVs  = 64
	minPooledText = 512
	minPooledKVs  = 16
)

// reserve returns buf emptied, with room for n elements: its own array if
// that is large enough and not oversized, a new one otherwise.
func reserve[T any](buf []T, n, most, least int) []T {
	if c := cap(buf); c > most || c > max(4*n, least) {
		buf = nil
	}
	return slices.Grow(buf[:0], n)
}

// heldSpanPool is a typed pool of copies.
type heldSpanPool struct{ p sync.Pool }

func (p *heldSpanPool) get() *heldSpan {
	if h, ok := p.p.Get().(*heldSpan); ok {
		return h
	}
	return new(heldSpan)
}

// put pools h for its buffers to be reused. Nothing may reference h or
// what it holds any more: fill overwrites every field and the buffers'
// contents. h is not cleared: what it still holds is its own copy, and
// writing to it here, long after it was filled, would only bring it back
// into the cache for nothing.
func (p *heldSpanPool) put(h *heldSpan) { p.p.Put(h) }

var heldSpans heldSpanPool
