package otlpenc

import (
	"encoding/binary"
	"math/bits"
)

// Field tags of the OTLP trace messages, precomputed as they appear on the
// wire: (field number << 3) | wire type. Every field number used here is
// below 16 except Span.flags, so each tag is a single byte except tagSpanFlags.
const (
	// ExportTraceServiceRequest.
	tagRequestResourceSpans = 1<<3 | 2

	// ResourceSpans.
	tagRSResource   = 1<<3 | 2
	tagRSScopeSpans = 2<<3 | 2
	tagRSSchemaURL  = 3<<3 | 2

	// ScopeSpans.
	tagSSScope     = 1<<3 | 2
	tagSSSpans     = 2<<3 | 2
	tagSSSchemaURL = 3<<3 | 2

	// Resource.
	tagResourceAttributes = 1<<3 | 2

	// InstrumentationScope.
	tagScopeName       = 1<<3 | 2
	tagScopeVersion    = 2<<3 | 2
	tagScopeAttributes = 3<<3 | 2

	// Span.
	tagSpanTraceID       = 1<<3 | 2
	tagSpanSpanID        = 2<<3 | 2
	tagSpanTraceState    = 3<<3 | 2
	tagSpanParentSpanID  = 4<<3 | 2
	tagSpanName          = 5<<3 | 2
	tagSpanKind          = 6<<3 | 0
	tagSpanStartTime     = 7<<3 | 1
	tagSpanEndTime       = 8<<3 | 1
	tagSpanAttributes    = 9<<3 | 2
	tagSpanDroppedAttrs  = 10<<3 | 0
	tagSpanEvents        = 11<<3 | 2
	tagSpanDroppedEvents = 12<<3 | 0
	tagSpanLinks         = 13<<3 | 2
	tagSpanDroppedLinks  = 14<<3 | 0
	tagSpanStatus        = 15<<3 | 2
	tagSpanFlags         = 16<<3 | 5 // two bytes on the wire: 0x85 0x01
	tagSpanFlagsByte0    = tagSpanFlags&0x7f | 0x80
	tagSpanFlagsByte1    = tagSpanFlags >> 7
	sizeFixed64Field     = 1 + 8

	// Span.Event.
	tagEventTime         = 1<<3 | 1
	tagEventName         = 2<<3 | 2
	tagEventAttributes   = 3<<3 | 2
	tagEventDroppedAttrs = 4<<3 | 0

	// Span.Link.
	tagLinkTraceID      = 1<<3 | 2
	tagLinkSpanID       = 2<<3 | 2
	tagLinkAttributes   = 4<<3 | 2
	tagLinkDroppedAttrs = 5<<3 | 0
	tagLinkFlags        = 6<<3 | 5

	// Status.
	tagStatusMessage = 2<<3 | 2
	tagStatusCode    = 3<<3 | 0

	// KeyValue.
	tagKVKey   = 1<<3 | 2
	tagKVValue = 2<<3 | 2

	// AnyValue.
	tagAnyString = 1<<3 | 2
	tagAnyBool   = 2<<3 | 0
	tagAnyInt    = 3<<3 | 0
	tagAnyDouble = 4<<3 | 1
	tagAnyArray  = 5<<3 | 2
	tagAnyKVList = 6<<3 | 2
	tagAnyBytes  = 7<<3 | 2

	// ArrayValue and KeyValueList.
	tagListValues = 1<<3 | 2
)

// sizeVarint returns the number of bytes v takes as a varint.
func sizeVarint(v uint64) int {
	// 1 + floor(bits/7), with 0 taking one byte.
	return int(9*uint32(bits.Len64(v|1))+64) / 64
}

// sizeLen returns the size of a length-delimited field with a one-byte tag
// and a payload of n bytes.
func sizeLen(n int) int {
	return 1 + sizeVarint(uint64(n)) + n
}

// sizeString returns the size of a proto3 string field with a one-byte tag,
// which is omitted when s is empty.
func sizeString(s string) int {
	if len(s) == 0 {
		return 0
	}
	return sizeLen(len(s))
}

// sizeUint returns the size of a proto3 varint field with a one-byte tag,
// which is omitted when v is zero.
func sizeUint(v uint32) int {
	if v == 0 {
		return 0
	}
	return 1 + sizeVarint(uint64(v))
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// appendLen appends a one-byte tag and a length prefix.
func appendLen(b []byte, tag byte, n int) []byte {
	if n < 0x80 {
		return append(b, tag, byte(n))
	}
	return appendVarint(append(b, tag), uint64(n))
}

// appendString appends s as a length-delimited field; the caller decides
// whether an empty s is written.
func appendString(b []byte, tag byte, s string) []byte {
	b = appendLen(b, tag, len(s))
	return append(b, s...)
}

// appendStringOpt appends s unless it is empty, as proto3 does.
func appendStringOpt(b []byte, tag byte, s string) []byte {
	if len(s) == 0 {
		return b
	}
	return appendString(b, tag, s)
}

// appendUintOpt appends a varint field unless v is zero.
func appendUintOpt(b []byte, tag byte, v uint32) []byte {
	if v == 0 {
		return b
	}
	return appendVarint(append(b, tag), uint64(v))
}

func appendFixed64(b []byte, tag byte, v uint64) []byte {
	return binary.LittleEndian.AppendUint64(append(b, tag), v)
}

func appendFixed32(b []byte, tag byte, v uint32) []byte {
	return binary.LittleEndian.AppendUint32(append(b, tag), v)
}

// endLen fills in the length of the message body b[body:], written after
// a placeholder of reserved bytes at b[body-reserved:body], and moves the
// body when its length takes fewer or more bytes than reserved.
func endLen(b []byte, body, reserved int) []byte {
	n := len(b) - body
	if reserved == 1 && n < 0x80 {
		b[body-1] = byte(n)
		return b
	}
	if reserved == 2 && n >= 0x80 && n < 1<<14 {
		b[body-2] = byte(n) | 0x80
		b[body-1] = byte(n >> 7)
		return b
	}
	k := sizeVarint(uint64(n))
	switch {
	case k < reserved:
		copy(b[body-reserved+k:], b[body:])
		b = b[:len(b)-(reserved-k)]
	case k > reserved:
		b = append(b, make([]byte, k-reserved)...)
		copy(b[body-reserved+k:], b[body:body+n])
	}
	binary.PutUvarint(b[body-reserved:], uint64(n))
	return b
}

// ascii reports whether s holds only ASCII. It ORs s together eight
// bytes at a time, the last word overlapping the one before, and tests
// the high bits once.
func ascii[T string | []byte](s T) bool {
	n := len(s)
	var acc uint64
	switch {
	case n >= 8:
		for i := 0; i < n-8; i += 8 {
			acc |= word64(s[i:])
		}
		acc |= word64(s[n-8:])
	case n >= 4:
		acc = uint64(word32(s) | word32(s[n-4:]))
	case n > 0:
		acc = uint64(s[0] | s[n/2] | s[n-1])
	}
	return acc&0x8080808080808080 == 0
}

// word64 returns the first eight bytes of s as a little-endian word; the
// compiler turns it into one load.
func word64[T string | []byte](s T) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func word32[T string | []byte](s T) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}
