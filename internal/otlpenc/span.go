package otlpenc

import (
	"encoding/binary"
	"math"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Span flag bits of the OTLP SpanFlags enum.
const (
	flagContextHasIsRemote = 0x100
	flagContextIsRemote    = 0x200
)

// spanRec is what the encoder reads from a span, read once so the size and
// write passes do not call the interface twice.
type spanRec struct {
	traceID    trace.TraceID
	spanID     trace.SpanID
	parentID   trace.SpanID
	hasParent  bool
	flags      uint32
	kind       uint32
	statusCode uint32
	traceState trace.TraceState
	name       string
	statusMsg  string
	start, end uint64
	attrs      []attribute.KeyValue
	events     []sdktrace.Event
	links      []sdktrace.Link

	droppedAttrs, droppedEvents, droppedLinks uint32

	group   int32 // scope group
	next    int32 // next span of the scope group, or -1
	size    int   // length of the encoded Span message
	repairs int   // strings repaired in this span
}

func (r *spanRec) fill(s sdktrace.ReadOnlySpan) {
	sc := s.SpanContext()
	r.traceID = sc.TraceID()
	r.spanID = sc.SpanID()
	r.traceState = sc.TraceState()
	parent := s.Parent()
	r.parentID = parent.SpanID()
	r.hasParent = r.parentID.IsValid()
	r.flags = spanFlags(sc.TraceFlags(), parent)
	r.name = s.Name()
	r.kind = spanKind(s.SpanKind())
	r.start = unixNano(s.StartTime())
	r.end = unixNano(s.EndTime())
	r.attrs = s.Attributes()
	r.events = s.Events()
	r.links = s.Links()
	st := s.Status()
	r.statusCode = statusCode(st.Code)
	r.statusMsg = st.Description
	r.droppedAttrs = clampUint32(s.DroppedAttributes())
	r.droppedEvents = clampUint32(s.DroppedEvents())
	r.droppedLinks = clampUint32(s.DroppedLinks())
}

// spanFlags returns the W3C trace flags in the low byte and, as the stock
// exporter does, always the "has is_remote" bit plus the "is_remote" bit of
// remote (the parent for a span, the linked context for a link).
func spanFlags(tf trace.TraceFlags, remote trace.SpanContext) uint32 {
	f := uint32(tf) | flagContextHasIsRemote
	if remote.IsRemote() {
		f |= flagContextIsRemote
	}
	return f
}

// spanKind maps to the OTLP Span.SpanKind enum; unknown kinds become
// SPAN_KIND_UNSPECIFIED.
func spanKind(k trace.SpanKind) uint32 {
	switch k {
	case trace.SpanKindInternal:
		return 1
	case trace.SpanKindServer:
		return 2
	case trace.SpanKindClient:
		return 3
	case trace.SpanKindProducer:
		return 4
	case trace.SpanKindConsumer:
		return 5
	default:
		return 0
	}
}

// statusCode maps to the OTLP Status.StatusCode enum.
func statusCode(c codes.Code) uint32 {
	switch c {
	case codes.Ok:
		return 1
	case codes.Error:
		return 2
	default:
		return 0
	}
}

// unixNano clamps times before 1970 (and the zero time) to 0, which the
// wire then omits.
func unixNano(t time.Time) uint64 {
	return uint64(max(0, t.UnixNano())) //nolint:gosec // clamped at zero
}

func clampUint32(v int) uint32 {
	if v <= 0 {
		return 0
	}
	if uint64(v) > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}

// Trace state keys and values are validated when a TraceState is built and
// can only hold printable ASCII, so they need no UTF-8 repair.

func traceStateLen(ts trace.TraceState) int {
	n := -1 // no comma before the first member
	ts.Walk(func(k, v string) bool {
		n += len(k) + len(v) + 2 // "," k "=" v
		return true
	})
	return n
}

func appendTraceState(b []byte, ts trace.TraceState) []byte {
	first := true
	ts.Walk(func(k, v string) bool {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, k...)
		b = append(b, '=')
		b = append(b, v...)
		return true
	})
	return b
}

// sizeSpan is the size pass over one span: it returns the length of its
// Span message and records what appendSpan needs.
func (e *Encoder) sizeSpan(r *spanRec) int {
	n := sizeTraceIDField + sizeSpanIDField + sizeSpanFlagsField
	if r.traceState.Len() > 0 {
		n += sizeLen(traceStateLen(r.traceState))
	}
	if r.hasParent {
		n += sizeSpanIDField
	}
	n += sizeString(e.str(r.name))
	n += sizeUint(r.kind)
	if r.start != 0 {
		n += sizeFixed64Field
	}
	if r.end != 0 {
		n += sizeFixed64Field
	}
	for i := range r.attrs {
		n += sizeLen(e.sizeKV(&r.attrs[i]))
	}
	n += sizeUint(r.droppedAttrs)
	for i := range r.events {
		n += sizeLen(e.sizeEvent(&r.events[i]))
	}
	n += sizeUint(r.droppedEvents)
	for i := range r.links {
		n += sizeLen(e.sizeLink(&r.links[i]))
	}
	n += sizeUint(r.droppedLinks)
	// The stock exporter always sends a Status, even an empty one.
	n += sizeLen(sizeString(e.str(r.statusMsg)) + sizeUint(r.statusCode))
	return n
}

// appendSpan is the write pass over one span, in field number order.
func (e *Encoder) appendSpan(b []byte, r *spanRec) []byte {
	b = append(b, tagSpanTraceID, 16)
	b = append(b, r.traceID[:]...)
	b = append(b, tagSpanSpanID, 8)
	b = append(b, r.spanID[:]...)
	if r.traceState.Len() > 0 {
		b = appendLen(b, tagSpanTraceState, traceStateLen(r.traceState))
		b = appendTraceState(b, r.traceState)
	}
	if r.hasParent {
		b = append(b, tagSpanParentSpanID, 8)
		b = append(b, r.parentID[:]...)
	}
	b = appendStringOpt(b, tagSpanName, e.wstr(r.name))
	b = appendUintOpt(b, tagSpanKind, r.kind)
	if r.start != 0 {
		b = appendFixed64(b, tagSpanStartTime, r.start)
	}
	if r.end != 0 {
		b = appendFixed64(b, tagSpanEndTime, r.end)
	}
	for i := range r.attrs {
		b = e.appendKV(b, tagSpanAttributes, &r.attrs[i])
	}
	b = appendUintOpt(b, tagSpanDroppedAttrs, r.droppedAttrs)
	for i := range r.events {
		b = e.appendEvent(b, &r.events[i])
	}
	b = appendUintOpt(b, tagSpanDroppedEvents, r.droppedEvents)
	for i := range r.links {
		b = e.appendLink(b, &r.links[i])
	}
	b = appendUintOpt(b, tagSpanDroppedLinks, r.droppedLinks)
	msg := e.wstr(r.statusMsg)
	b = appendLen(b, tagSpanStatus, sizeString(msg)+sizeUint(r.statusCode))
	b = appendStringOpt(b, tagStatusMessage, msg)
	b = appendUintOpt(b, tagStatusCode, r.statusCode)
	b = append(b, tagSpanFlagsByte0, tagSpanFlagsByte1)
	return binary.LittleEndian.AppendUint32(b, r.flags)
}

func (e *Encoder) sizeEvent(ev *sdktrace.Event) int {
	slot := e.pushSize()
	n := 0
	if unixNano(ev.Time) != 0 {
		n += sizeFixed64Field
	}
	n += sizeString(e.str(ev.Name))
	for i := range ev.Attributes {
		n += sizeLen(e.sizeKV(&ev.Attributes[i]))
	}
	n += sizeUint(clampUint32(ev.DroppedAttributeCount))
	e.sizes[slot] = n
	return n
}

func (e *Encoder) appendEvent(b []byte, ev *sdktrace.Event) []byte {
	b = appendLen(b, tagSpanEvents, e.popSize())
	if t := unixNano(ev.Time); t != 0 {
		b = appendFixed64(b, tagEventTime, t)
	}
	b = appendStringOpt(b, tagEventName, e.wstr(ev.Name))
	for i := range ev.Attributes {
		b = e.appendKV(b, tagEventAttributes, &ev.Attributes[i])
	}
	return appendUintOpt(b, tagEventDroppedAttrs, clampUint32(ev.DroppedAttributeCount))
}

// The stock exporter sends no trace state on links; neither do we, so the
// two stay proto.Equal.

func (e *Encoder) sizeLink(l *sdktrace.Link) int {
	slot := e.pushSize()
	n := sizeTraceIDField + sizeSpanIDField + sizeFlagsField32
	for i := range l.Attributes {
		n += sizeLen(e.sizeKV(&l.Attributes[i]))
	}
	n += sizeUint(clampUint32(l.DroppedAttributeCount))
	e.sizes[slot] = n
	return n
}

func (e *Encoder) appendLink(b []byte, l *sdktrace.Link) []byte {
	b = appendLen(b, tagSpanLinks, e.popSize())
	tid, sid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
	b = append(b, tagLinkTraceID, 16)
	b = append(b, tid[:]...)
	b = append(b, tagLinkSpanID, 8)
	b = append(b, sid[:]...)
	for i := range l.Attributes {
		b = e.appendKV(b, tagLinkAttributes, &l.Attributes[i])
	}
	b = appendUintOpt(b, tagLinkDroppedAttrs, clampUint32(l.DroppedAttributeCount))
	return appendFixed32(b, tagLinkFlags, spanFlags(l.SpanContext.TraceFlags(), l.SpanContext))
}

// sizeKV returns the length of a KeyValue message.
func (e *Encoder) sizeKV(kv *attribute.KeyValue) int {
	slot := e.pushSize()
	n := sizeString(e.str(string(kv.Key)))
	n += sizeLen(e.sizeAny(&kv.Value)) // the value is always present
	e.sizes[slot] = n
	return n
}

// appendKV appends kv as a KeyValue field tagged tag.
func (e *Encoder) appendKV(b []byte, tag byte, kv *attribute.KeyValue) []byte {
	b = appendLen(b, tag, e.popSize())
	b = appendStringOpt(b, tagKVKey, e.wstr(string(kv.Key)))
	return e.appendAny(b, tagKVValue, &kv.Value)
}

// invalidValue is what the stock exporter sends for a value of unknown type.
const invalidValue = "INVALID"

// bytesAsString reports whether Value.AsString returns the bytes of a
// BYTESLICE value, which reads them without the copy AsByteSlice makes.
var bytesAsString = attribute.ByteSliceValue([]byte{0xff, 'x'}).AsString() == "\xffx"

func bytesOf(v *attribute.Value) string {
	if bytesAsString {
		return v.AsString()
	}
	return string(v.AsByteSlice())
}

// sizeAny returns the length of an AnyValue message. Its one-of member is
// always written, even when it holds a zero value.
func (e *Encoder) sizeAny(v *attribute.Value) int {
	switch v.Type() {
	case attribute.EMPTY:
		return 0
	case attribute.BOOL:
		return 2
	case attribute.INT64:
		return 1 + sizeVarint(uint64(v.AsInt64()))
	case attribute.FLOAT64:
		return sizeFixed64Field
	case attribute.STRING:
		return sizeLen(len(e.str(v.AsString())))
	case attribute.BYTESLICE:
		return sizeLen(len(bytesOf(v)))
	case attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE,
		attribute.STRINGSLICE, attribute.SLICE, attribute.MAP:
		return sizeLen(e.sizeList(v))
	default:
		return sizeLen(len(invalidValue))
	}
}

// sizeList returns the length of the ArrayValue or KeyValueList message of
// a composite value. The attribute package hands slices out as copies; the
// copy is kept for the write pass so it is made once.
func (e *Encoder) sizeList(v *attribute.Value) int {
	slot := e.pushSize()
	n := 0
	switch v.Type() {
	case attribute.BOOLSLICE:
		s := v.AsBoolSlice()
		e.side = append(e.side, sideValue{bools: s})
		n = len(s) * sizeLen(2)
	case attribute.INT64SLICE:
		s := v.AsInt64Slice()
		e.side = append(e.side, sideValue{ints: s})
		for _, x := range s {
			n += sizeLen(1 + sizeVarint(uint64(x)))
		}
	case attribute.FLOAT64SLICE:
		s := v.AsFloat64Slice()
		e.side = append(e.side, sideValue{floats: s})
		n = len(s) * sizeLen(sizeFixed64Field)
	case attribute.STRINGSLICE:
		s := v.AsStringSlice()
		e.side = append(e.side, sideValue{strs: s})
		for _, x := range s {
			n += sizeLen(sizeLen(len(e.str(x))))
		}
	case attribute.SLICE:
		s := v.AsSlice()
		e.side = append(e.side, sideValue{vals: s})
		for i := range s {
			n += sizeLen(e.sizeAny(&s[i]))
		}
	case attribute.MAP:
		s := v.AsMap()
		e.side = append(e.side, sideValue{kvs: s})
		for i := range s {
			n += sizeLen(e.sizeKV(&s[i]))
		}
	}
	e.sizes[slot] = n
	return n
}

// appendAny appends v as an AnyValue field tagged tag.
func (e *Encoder) appendAny(b []byte, tag byte, v *attribute.Value) []byte {
	switch t := v.Type(); t {
	case attribute.EMPTY:
		return append(b, tag, 0)
	case attribute.BOOL:
		return append(b, tag, 2, tagAnyBool, boolByte(v.AsBool()))
	case attribute.INT64:
		x := uint64(v.AsInt64())
		b = append(b, tag, byte(1+sizeVarint(x)), tagAnyInt)
		return appendVarint(b, x)
	case attribute.FLOAT64:
		b = append(b, tag, sizeFixed64Field)
		return appendFixed64(b, tagAnyDouble, math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		s := e.wstr(v.AsString())
		b = appendLen(b, tag, sizeLen(len(s)))
		return appendString(b, tagAnyString, s)
	case attribute.BYTESLICE:
		s := bytesOf(v)
		b = appendLen(b, tag, sizeLen(len(s)))
		return appendString(b, tagAnyBytes, s)
	case attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE,
		attribute.STRINGSLICE, attribute.SLICE, attribute.MAP:
		n := e.popSize()
		b = appendLen(b, tag, sizeLen(n))
		if t == attribute.MAP {
			b = appendLen(b, tagAnyKVList, n)
		} else {
			b = appendLen(b, tagAnyArray, n)
		}
		return e.appendList(b, t, e.popSide())
	default:
		b = append(b, tag, byte(sizeLen(len(invalidValue))))
		return appendString(b, tagAnyString, invalidValue)
	}
}

// appendList appends the elements of a composite value, each as a
// values field of its ArrayValue or KeyValueList.
func (e *Encoder) appendList(b []byte, t attribute.Type, sv *sideValue) []byte {
	switch t {
	case attribute.BOOLSLICE:
		for _, x := range sv.bools {
			b = append(b, tagListValues, 2, tagAnyBool, boolByte(x))
		}
	case attribute.INT64SLICE:
		for _, x := range sv.ints {
			u := uint64(x)
			b = append(b, tagListValues, byte(1+sizeVarint(u)), tagAnyInt)
			b = appendVarint(b, u)
		}
	case attribute.FLOAT64SLICE:
		for _, x := range sv.floats {
			b = append(b, tagListValues, sizeFixed64Field)
			b = appendFixed64(b, tagAnyDouble, math.Float64bits(x))
		}
	case attribute.STRINGSLICE:
		for _, x := range sv.strs {
			s := e.wstr(x)
			b = appendLen(b, tagListValues, sizeLen(len(s)))
			b = appendString(b, tagAnyString, s)
		}
	case attribute.SLICE:
		for i := range sv.vals {
			b = e.appendAny(b, tagListValues, &sv.vals[i])
		}
	case attribute.MAP:
		for i := range sv.kvs {
			b = e.appendKV(b, tagListValues, &sv.kvs[i])
		}
	}
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}
