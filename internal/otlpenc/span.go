package otlpenc

import (
	"encoding/binary"
	"math"
	"reflect"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracekeeper/tracekeeper/internal/mirror"
)

// Span flag bits of the OTLP SpanFlags enum.
const (
	flagContextHasIsRemote = 0x100
	flagContextIsRemote    = 0x200
)

// spanRec is one encoded span: where its Span field lies in the arena and
// which group it belongs to. It holds no reference to the span.
type spanRec struct {
	off, end int   // the Span field, tag and length included: arena[off:end]
	group    int32 // scope group
	next     int32 // next span of the scope group, or -1
	repairs  int   // strings repaired in this span
}

// spanContextData mirrors trace.SpanContext field for field. The methods
// of a SpanContext have value receivers, and the compiler copies the whole
// context for every call on one held in a span: the encoder reads the
// fields in place instead when the layouts match (contextsInPlace).
type spanContextData struct {
	traceID    trace.TraceID
	spanID     trace.SpanID
	traceFlags trace.TraceFlags
	traceState trace.TraceState
	remote     bool
}

var contextsInPlace = mirror.Matches(reflect.TypeFor[trace.SpanContext](), reflect.TypeFor[spanContextData]())

// contextOf returns the fields of *sc: in place, or read through its
// methods into *tmp.
func contextOf(sc *trace.SpanContext, tmp *spanContextData) *spanContextData {
	if contextsInPlace {
		return (*spanContextData)(unsafe.Pointer(sc))
	}
	*tmp = spanContextData{
		traceID: sc.TraceID(), spanID: sc.SpanID(), traceFlags: sc.TraceFlags(),
		traceState: sc.TraceState(), remote: sc.IsRemote(),
	}
	return tmp
}

// spanFlags returns the W3C trace flags in the low byte and, as the stock
// exporter does, always the "has is_remote" bit plus the "is_remote" bit of
// remote (the parent for a span, the linked context for a link).
func spanFlags(tf trace.TraceFlags, remote bool) uint32 {
	f := uint32(tf) | flagContextHasIsRemote
	if remote {
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

// appendSpan appends s as a ScopeSpans.spans field, its fields in field
// number order. Nested messages are written with a length placeholder that
// is filled in, and widened if need be, once their body is written.
func (e *Encoder) appendSpan(b []byte, d *spanData) []byte {
	b = append(b, tagSSSpans, 0, 0) // most spans take 128 to 16383 bytes
	body := len(b)
	var scTmp, parentTmp spanContextData
	sc, parent := contextOf(d.SpanContext(), &scTmp), contextOf(d.Parent(), &parentTmp)
	b = append(b, tagSpanTraceID, 16)
	b = append(b, sc.traceID[:]...)
	b = append(b, tagSpanSpanID, 8)
	b = append(b, sc.spanID[:]...)
	if ts := sc.traceState; ts.Len() > 0 {
		b = appendLen(b, tagSpanTraceState, traceStateLen(ts))
		b = appendTraceState(b, ts)
	}
	if parent.spanID.IsValid() {
		b = append(b, tagSpanParentSpanID, 8)
		b = append(b, parent.spanID[:]...)
	}
	b = appendStringOpt(b, tagSpanName, e.spanName(d.Name()))
	b = appendUintOpt(b, tagSpanKind, spanKind(d.SpanKind()))
	if t := unixNano(d.StartTime()); t != 0 {
		b = appendFixed64(b, tagSpanStartTime, t)
	}
	if t := unixNano(d.EndTime()); t != 0 {
		b = appendFixed64(b, tagSpanEndTime, t)
	}
	b = e.appendSpanAttrs(b, d.Attributes())
	b = appendUintOpt(b, tagSpanDroppedAttrs, clampUint32(d.DroppedAttributes()))
	evs := d.Events()
	for i := range evs {
		b = e.appendEvent(b, &evs[i])
	}
	b = appendUintOpt(b, tagSpanDroppedEvents, clampUint32(d.DroppedEvents()))
	links := d.Links()
	for i := range links {
		b = e.appendLink(b, &links[i])
	}
	b = appendUintOpt(b, tagSpanDroppedLinks, clampUint32(d.DroppedLinks()))
	// The stock exporter always sends a Status, even an empty one.
	msg, code := e.str(d.Status().Description), statusCode(d.Status().Code)
	b = appendLen(b, tagSpanStatus, sizeString(msg)+sizeUint(code))
	b = appendStringOpt(b, tagStatusMessage, msg)
	b = appendUintOpt(b, tagStatusCode, code)
	b = append(b, tagSpanFlagsByte0, tagSpanFlagsByte1)
	b = binary.LittleEndian.AppendUint32(b, spanFlags(sc.traceFlags, parent.remote))
	n := len(b)
	b = endLen(b, body, 2)
	if shift := len(b) - n; shift != 0 {
		e.shiftMemos(body, shift)
	}
	return b
}

// spanName returns the span name s, checked and repaired. Spans of a
// batch often share their name, the same string: the last valid one is
// remembered and not checked again.
func (e *Encoder) spanName(s string) string {
	if sameString(s, e.name) {
		return s
	}
	repairs := e.repairs
	v := e.str(s)
	if e.repairs == repairs {
		e.name = s
	}
	return v
}

func (e *Encoder) appendEvent(b []byte, ev *sdktrace.Event) []byte {
	b = append(b, tagSpanEvents, 0)
	body := len(b)
	if t := unixNano(ev.Time); t != 0 {
		b = appendFixed64(b, tagEventTime, t)
	}
	b = appendStringOpt(b, tagEventName, e.str(ev.Name))
	b = e.appendKVs(b, tagEventAttributes, ev.Attributes)
	b = appendUintOpt(b, tagEventDroppedAttrs, clampUint32(ev.DroppedAttributeCount))
	return endLen(b, body, 1)
}

// The stock exporter sends no trace state on links; neither do we, so the
// two stay proto.Equal.

func (e *Encoder) appendLink(b []byte, l *sdktrace.Link) []byte {
	b = append(b, tagSpanLinks, 0)
	body := len(b)
	tid, sid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
	b = append(b, tagLinkTraceID, 16)
	b = append(b, tid[:]...)
	b = append(b, tagLinkSpanID, 8)
	b = append(b, sid[:]...)
	b = e.appendKVs(b, tagLinkAttributes, l.Attributes)
	b = appendUintOpt(b, tagLinkDroppedAttrs, clampUint32(l.DroppedAttributeCount))
	b = appendFixed32(b, tagLinkFlags, spanFlags(l.SpanContext.TraceFlags(), l.SpanContext.IsRemote()))
	return endLen(b, body, 1)
}

// appendKVs appends attrs as KeyValue fields tagged tag.
//
// Attributes of the common kinds, a key and a string, bool, int or float
// value in a KeyValue of under 128 bytes, are written here with one-byte
// lengths and without checking their strings one by one: every byte such
// a KeyValue has outside an int or float value is below 0x80 exactly when
// its key and string are ASCII. So the bytes written since the last check
// are tested in one go before each int or float value and at the end, and
// should they hold anything but ASCII, the attributes they came from are
// rewritten by appendKV, which checks and repairs each string.
func (e *Encoder) appendKVs(b []byte, tag byte, attrs []attribute.KeyValue) []byte {
	from, at := 0, len(b) // attrs[from:i] are written unchecked in b[at:]
	for i := range attrs {
		kv := &attrs[i]
		key, v := string(kv.Key), &kv.Value
		kn := len(key)
		if kn == 0 || kn >= 0x80-2-11 {
			b = e.checkKVs(b, at, tag, attrs[from:i])
			b = e.appendKV(b, tag, kv)
			from, at = i+1, len(b)
			continue
		}
		switch v.Type() {
		case attribute.STRING:
			s := v.AsString()
			sn := len(s)
			n := 2 + kn + 4 + sn
			if n >= 0x80 {
				break
			}
			b = append(b, tag, byte(n), tagKVKey, byte(kn))
			b = append(b, key...)
			b = append(b, tagKVValue, byte(2+sn), tagAnyString, byte(sn))
			b = append(b, s...)
			continue
		case attribute.BOOL:
			b = append(b, tag, byte(2+kn+4), tagKVKey, byte(kn))
			b = append(b, key...)
			b = append(b, tagKVValue, 2, tagAnyBool, boolByte(v.AsBool()))
			continue
		case attribute.INT64:
			x := uint64(v.AsInt64())
			vn := 1 + sizeVarint(x)
			b = append(b, tag, byte(2+kn+2+vn), tagKVKey, byte(kn))
			b = append(b, key...)
			if !ascii(b[at:]) {
				b = e.checkKVs(b, at, tag, attrs[from:i+1])
			} else {
				b = append(b, tagKVValue, byte(vn), tagAnyInt)
				b = appendVarint(b, x)
			}
			from, at = i+1, len(b)
			continue
		case attribute.FLOAT64:
			b = append(b, tag, byte(2+kn+2+sizeFixed64Field), tagKVKey, byte(kn))
			b = append(b, key...)
			if !ascii(b[at:]) {
				b = e.checkKVs(b, at, tag, attrs[from:i+1])
			} else {
				b = append(b, tagKVValue, sizeFixed64Field, tagAnyDouble)
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.AsFloat64()))
			}
			from, at = i+1, len(b)
			continue
		}
		b = e.checkKVs(b, at, tag, attrs[from:i])
		b = e.appendKV(b, tag, kv)
		from, at = i+1, len(b)
	}
	return e.checkKVs(b, at, tag, attrs[from:])
}

// checkKVs checks b[at:], where attrs were written unchecked, and when it
// is not all ASCII writes attrs there again through appendKV.
func (e *Encoder) checkKVs(b []byte, at int, tag byte, attrs []attribute.KeyValue) []byte {
	if ascii(b[at:]) {
		return b
	}
	b = b[:at]
	for i := range attrs {
		b = e.appendKV(b, tag, &attrs[i])
	}
	return b
}

// appendKV appends kv as a KeyValue field tagged tag. The lengths of
// scalar and string values are known before they are written, and a
// KeyValue of under 128 bytes with a key, the usual one, is written with
// one-byte lengths straight; composite values go behind a placeholder.
func (e *Encoder) appendKV(b []byte, tag byte, kv *attribute.KeyValue) []byte {
	return e.appendKeyValue(b, tag, e.str(string(kv.Key)), &kv.Value)
}

// appendKeyValue is appendKV for a key already checked, or repaired.
func (e *Encoder) appendKeyValue(b []byte, tag byte, key string, v *attribute.Value) []byte {
	kn := len(key)
	short := kn > 0 && kn < 0x80-2-11 // room left for any scalar value
	var vn int                        // AnyValue length
	switch v.Type() {
	case attribute.STRING:
		s := e.str(v.AsString())
		sn := len(s)
		if n := 2 + kn + 4 + sn; kn > 0 && n < 0x80 {
			b = append(b, tag, byte(n), tagKVKey, byte(kn))
			b = append(b, key...)
			b = append(b, tagKVValue, byte(2+sn), tagAnyString, byte(sn))
			return append(b, s...)
		}
		vn = sizeLen(sn)
		b = appendLen(b, tag, sizeString(key)+sizeLen(vn))
		b = appendStringOpt(b, tagKVKey, key)
		b = appendLen(b, tagKVValue, vn)
		return appendString(b, tagAnyString, s)
	case attribute.BOOL:
		if short {
			b = append(b, tag, byte(2+kn+4), tagKVKey, byte(kn))
			b = append(b, key...)
			return append(b, tagKVValue, 2, tagAnyBool, boolByte(v.AsBool()))
		}
		vn = 2
	case attribute.INT64:
		x := uint64(v.AsInt64())
		vn = 1 + sizeVarint(x)
		if short {
			b = append(b, tag, byte(2+kn+2+vn), tagKVKey, byte(kn))
			b = append(b, key...)
			b = append(b, tagKVValue, byte(vn), tagAnyInt)
			return appendVarint(b, x)
		}
	case attribute.FLOAT64:
		if short {
			b = append(b, tag, byte(2+kn+2+sizeFixed64Field), tagKVKey, byte(kn))
			b = append(b, key...)
			b = append(b, tagKVValue, sizeFixed64Field, tagAnyDouble)
			return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.AsFloat64()))
		}
		vn = sizeFixed64Field
	default:
		b = append(b, tag, 0)
		body := len(b)
		b = appendStringOpt(b, tagKVKey, key)
		b = e.appendAny(b, tagKVValue, v)
		return endLen(b, body, 1)
	}
	b = appendLen(b, tag, sizeString(key)+2+vn) // vn < 0x80
	b = appendStringOpt(b, tagKVKey, key)
	return e.appendAny(b, tagKVValue, v)
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

// appendAny appends v as an AnyValue field tagged tag. Its one-of member
// is always written, even when it holds a zero value.
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
		s := e.str(v.AsString())
		b = appendLen(b, tag, sizeLen(len(s)))
		return appendString(b, tagAnyString, s)
	case attribute.BYTESLICE:
		s := bytesOf(v)
		b = appendLen(b, tag, sizeLen(len(s)))
		return appendString(b, tagAnyBytes, s)
	case attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE,
		attribute.STRINGSLICE, attribute.SLICE, attribute.MAP:
		list := byte(tagAnyArray)
		if t == attribute.MAP {
			list = tagAnyKVList
		}
		b = append(b, tag, 0, list, 0)
		outer, inner := len(b)-2, len(b)
		b = endLen(e.appendList(b, t, v), inner, 1)
		return endLen(b, outer, 1)
	default:
		b = append(b, tag, byte(sizeLen(len(invalidValue))))
		return appendString(b, tagAnyString, invalidValue)
	}
}

// appendList appends the elements of a composite value, each as a values
// field of its ArrayValue or KeyValueList. The attribute package hands
// slices out as copies, which is the only allocation of a composite value.
func (e *Encoder) appendList(b []byte, t attribute.Type, v *attribute.Value) []byte {
	switch t {
	case attribute.BOOLSLICE:
		for _, x := range v.AsBoolSlice() {
			b = append(b, tagListValues, 2, tagAnyBool, boolByte(x))
		}
	case attribute.INT64SLICE:
		for _, x := range v.AsInt64Slice() {
			u := uint64(x)
			b = append(b, tagListValues, byte(1+sizeVarint(u)), tagAnyInt)
			b = appendVarint(b, u)
		}
	case attribute.FLOAT64SLICE:
		for _, x := range v.AsFloat64Slice() {
			b = append(b, tagListValues, sizeFixed64Field)
			b = appendFixed64(b, tagAnyDouble, math.Float64bits(x))
		}
	case attribute.STRINGSLICE:
		for _, x := range v.AsStringSlice() {
			s := e.str(x)
			b = appendLen(b, tagListValues, sizeLen(len(s)))
			b = appendString(b, tagAnyString, s)
		}
	case attribute.SLICE:
		s := v.AsSlice()
		for i := range s {
			b = e.appendAny(b, tagListValues, &s[i])
		}
	case attribute.MAP:
		s := v.AsMap()
		for i := range s {
			b = e.appendKV(b, tagListValues, &s[i])
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
