package otlpenc

import (
	"encoding/binary"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"

	"github.com/tracekeeper/tracekeeper/internal/mirror"
)

// memoAttrs is how many leading positions of a span's attribute list the
// encoder remembers.
const memoAttrs = 16

// valuesInPlace reports whether the memos read attribute values in place
// (mirror.ValueOf), so that they compare values by their words instead of
// through methods that copy the value for every call.
var valuesInPlace = mirror.ValueLayoutMatches

// attrMemo remembers the last span attribute written at one position of
// the attribute list, and where its KeyValue field lies in the arena of
// the batch being encoded. Spans of one kind carry the same keys in the
// same order and often the same values (the method, the route, the server
// address, the status code), nearly always the very same strings: an
// attribute whose key and value are those remembered at its position, the
// same type, bits and string bytes at the same address, is copied from the
// arena instead of being encoded and checked again, and runs of such
// attributes that lie next to each other there are copied at once.
//
// Only scalar and string values with a valid key and value are remembered,
// so a copy never hides a repair from Result.Repaired. The memos live for
// one Encode call: reset clears them, with the references they hold.
type attrMemo struct {
	key      string
	str      string
	num      uint64
	typ      attribute.Type
	off, end int // the KeyValue field: arena[off:end]; end is 0 for no memo
}

// sameString reports whether a and b are the same bytes in memory, which
// implies that they are equal.
func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

// holds reports whether kv is the attribute m remembers.
func (m *attrMemo) holds(kv *attribute.KeyValue) bool {
	v := mirror.ValueOf(&kv.Value)
	return m.end != 0 && v.Num() == m.num && v.Type() == m.typ &&
		sameString(v.Str(), m.str) && sameString(string(kv.Key), m.key)
}

// appendSpanAttrs appends a span's attributes as Span.attributes fields,
// copying those it finds in the memos and remembering the others.
func (e *Encoder) appendSpanAttrs(b []byte, attrs []attribute.KeyValue) []byte {
	if !valuesInPlace {
		return e.appendKVs(b, tagSpanAttributes, attrs)
	}
	n := min(len(attrs), memoAttrs)
	memos := e.memos[:n]
	for i := 0; i < n; {
		// Copy the longest run of remembered attributes that lie one
		// after another in the arena at once.
		j, end := i, memos[i].off
		for j < n && memos[j].off == end && memos[j].holds(&attrs[j]) {
			end = memos[j].end
			j++
		}
		if j > i {
			b = append(b, b[memos[i].off:end]...)
			i = j
			continue
		}
		b = e.remember(b, &attrs[i], &memos[i])
		i++
	}
	if n < len(attrs) {
		b = e.appendKVs(b, tagSpanAttributes, attrs[n:])
	}
	return b
}

// remember appends kv, which m does not hold, and makes m remember it
// when it may be copied. A key that is the one m remembered is known to
// be valid and is not checked again; a scalar under that key that takes
// as many bytes as the one remembered is written by copying the
// remembered KeyValue and replacing the value's bytes, which end it.
func (e *Encoder) remember(b []byte, kv *attribute.KeyValue, m *attrMemo) []byte {
	v := mirror.ValueOf(&kv.Value)
	key := string(kv.Key)
	off, repairs := len(b), e.repairs
	switch {
	case m.end == 0 || !sameString(key, m.key):
		b = e.appendKV(b, tagSpanAttributes, kv)
	case v.Type() == m.typ && v.Type() == attribute.BOOL:
		b = append(b, b[m.off:m.end]...)
		b[len(b)-1] = boolByte(v.Num() != 0)
	case v.Type() == m.typ && v.Type() == attribute.FLOAT64:
		b = append(b, b[m.off:m.end]...)
		binary.LittleEndian.PutUint64(b[len(b)-8:], v.Num())
	case v.Type() == m.typ && v.Type() == attribute.INT64 && sizeVarint(v.Num()) == sizeVarint(m.num):
		b = append(b, b[m.off:m.end]...)
		binary.PutUvarint(b[len(b)-sizeVarint(v.Num()):], v.Num())
	default:
		b = e.appendKeyValue(b, tagSpanAttributes, key, &kv.Value)
	}
	switch v.Type() {
	case attribute.BOOL, attribute.INT64, attribute.FLOAT64, attribute.STRING:
		if e.repairs == repairs {
			// Field by field: a struct literal is built on the stack and
			// copied in wider words than it was written, which stalls.
			m.key, m.str, m.num, m.typ = key, v.Str(), v.Num(), v.Type()
			m.off, m.end = off, len(b)
			return b
		}
	}
	*m = attrMemo{}
	return b
}

// shiftMemos follows a span body that endLen moved by shift bytes: the
// memos pointing at or after body point into it.
func (e *Encoder) shiftMemos(body, shift int) {
	for i := range e.memos {
		if m := &e.memos[i]; m.end != 0 && m.off >= body {
			m.off += shift
			m.end += shift
		}
	}
}
