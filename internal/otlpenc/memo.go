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

// patchable reports whether kv differs from the attribute m remembers by
// a scalar of the same type and encoded size under the very same key:
// its KeyValue field is m's with the value's last bytes replaced (see
// patch).
func (m *attrMemo) patchable(kv *attribute.KeyValue) bool {
	v := mirror.ValueOf(&kv.Value)
	if m.end == 0 || v.Type() != m.typ || !sameString(string(kv.Key), m.key) || v.Str() != "" {
		return false
	}
	switch m.typ {
	case attribute.BOOL, attribute.FLOAT64:
		return true
	case attribute.INT64:
		return sizeVarint(v.Num()) == sizeVarint(m.num)
	}
	return false
}

// patch writes num, a value of m's type and of the same encoded size as
// m's, over the end of field, a copy of m's KeyValue field, and makes m
// remember it.
func (m *attrMemo) patch(field []byte, num uint64) {
	switch m.typ {
	case attribute.BOOL:
		field[len(field)-1] = boolByte(num != 0)
	case attribute.FLOAT64:
		binary.LittleEndian.PutUint64(field[len(field)-8:], num)
	case attribute.INT64:
		binary.PutUvarint(field[len(field)-sizeVarint(num):], num)
	}
	m.num = num
}

// appendSpanAttrs appends a span's attributes as Span.attributes fields,
// copying those it finds in the memos and remembering the others.
//
// The memos follow the copies: after each span they point at its own
// fields, so that a span like the one before it finds its attributes one
// after another in the arena and copies them at once. An attribute that
// differs from the remembered one only by a scalar of the same encoded
// size (a flag, a status code) does not break the run: it is copied with
// the others, and its value written over the copy.
func (e *Encoder) appendSpanAttrs(b []byte, attrs []attribute.KeyValue) []byte {
	if !valuesInPlace {
		return e.appendKVs(b, tagSpanAttributes, attrs)
	}
	n := min(len(attrs), memoAttrs)
	memos := e.memos[:n]
	for i := 0; i < n; {
		// Copy the longest run of remembered (or patchable) attributes
		// that lie one after another in the arena at once.
		j, start := i, memos[i].off
		end := start
		var patches uint16
		for j < n && memos[j].off == end {
			if !memos[j].holds(&attrs[j]) {
				if !memos[j].patchable(&attrs[j]) {
					break
				}
				patches |= 1 << (j - i)
			}
			end = memos[j].end
			j++
		}
		if j > i {
			shift := len(b) - start
			b = append(b, b[start:end]...)
			for k := i; k < j; k++ {
				m := &memos[k]
				m.off += shift
				m.end += shift
				if patches&(1<<(k-i)) != 0 {
					m.patch(b[m.off:m.end], mirror.ValueOf(&attrs[k].Value).Num())
				}
			}
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
