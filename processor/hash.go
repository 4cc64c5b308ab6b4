package processor

import (
	"hash/maphash"
	"math"
	"math/bits"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
)

// valueHasher maps attribute values to the non-zero 64-bit hashes a
// valueSet stores. It is seeded per Guard, so that values cannot be chosen
// in advance to crowd one probe sequence.
type valueHasher struct {
	seed maphash.Seed
	salt uint64
	k    [7]uint64 // keys of the short-string hash
}

// Type tags keep values of different types apart within one key.
const (
	tagInt64   = 0x9e3779b97f4a7c15
	tagFloat64 = 0xc2b2ae3d27d4eb4f
	tagOther   = 0x165667b19e3779f9
)

func newValueHasher() valueHasher {
	seed := maphash.MakeSeed()
	h := valueHasher{seed: seed, salt: maphash.String(seed, "tracekeeper")}
	for i := range h.k {
		h.k[i] = maphash.String(seed, string(rune('a'+i))) | 1
	}
	return h
}

// str hashes a string value. Strings of up to 32 bytes, most attribute
// values and span names, are mixed inline with 64-bit multiplications (the
// wyhash construction) from at most four overlapping word loads; longer
// ones go through hash/maphash.
func (h *valueHasher) str(s string) uint64 {
	n := uintptr(len(s))
	p := unsafe.Pointer(unsafe.StringData(s))
	var a, b uint64
	switch {
	case n > 32:
		return nonZero(maphash.String(h.seed, s))
	case n > 16:
		a = mum(load64(p, 0)^h.k[3], load64(p, 8)^h.k[4])
		b = mum(load64(p, n-16)^h.k[5], load64(p, n-8)^h.k[6])
	case n >= 8:
		a, b = load64(p, 0), load64(p, n-8)
	case n >= 4:
		a, b = load32(p, 0), load32(p, n-4)
	case n > 0:
		a = uint64(*(*byte)(p))<<16 | uint64(*(*byte)(unsafe.Add(p, n>>1)))<<8 | uint64(*(*byte)(unsafe.Add(p, n-1)))
	}
	return nonZero(mum(mum(a^h.k[0], b^h.k[1]), uint64(n)^h.k[2]))
}

// load64 and load32 read the 8 or 4 bytes at p+off in the machine's byte
// order, which is all a hash within one process needs; the caller has
// checked the length, so they skip the bounds checks of slice indexing.
func load64(p unsafe.Pointer, off uintptr) uint64 { return *(*uint64)(unsafe.Add(p, off)) }
func load32(p unsafe.Pointer, off uintptr) uint64 {
	return uint64(*(*uint32)(unsafe.Add(p, off)))
}

// mum multiplies a and b into 128 bits and folds the halves together.
func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

func (h *valueHasher) num(tag, v uint64) uint64 {
	// The splitmix64 finalizer: a bijection, so distinct numbers of one
	// type never collide.
	z := v ^ h.salt ^ tag
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return nonZero(z ^ (z >> 31))
}

// value hashes a non-string attribute value. Slices and maps are hashed
// through their Emit form, which allocates; they are rare on spans.
func (h *valueHasher) value(v *attribute.Value) uint64 {
	switch v.Type() {
	case attribute.INT64:
		return h.num(tagInt64, uint64(v.AsInt64()))
	case attribute.FLOAT64:
		return h.num(tagFloat64, math.Float64bits(v.AsFloat64()))
	default:
		return h.num(tagOther^uint64(v.Type()), maphash.String(h.seed, v.Emit()))
	}
}

func nonZero(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}
