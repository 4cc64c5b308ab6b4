package processor

import (
	"hash/maphash"
	"math"
	"math/bits"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"

	"github.com/tracekeeper/tracekeeper/internal/mirror"
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
	tagExempt  = 0x27d4eb2f165667c5
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
func (h *valueHasher) str(s string) uint64 { return h.keyedStr(0, s) }

// keyedStr is str for the value s of the attribute key whose seed (see
// keySeed) is key: the same value of two keys hashes differently. With key
// 0 it is str.
func (h *valueHasher) keyedStr(key uint64, s string) uint64 {
	n := uintptr(len(s))
	p := unsafe.Pointer(unsafe.StringData(s))
	var a, b uint64
	switch {
	case n > 128:
		return nonZero(mum(maphash.String(h.seed, s)^h.k[3], uint64(n)^h.k[2]^key))
	case n > 32:
		return h.medium(key, p, n)
	case n > 16:
		a = mum(load64(p, 0)^h.k[3], load64(p, 8)^h.k[4])
		b = mum(load64(p, n-16)^h.k[5], load64(p, n-8)^h.k[6])
	case n >= 4:
		// At most four overlapping 32-bit loads hold every byte (the
		// wyhash reading of short inputs).
		d := (n >> 3) << 2 // 4 for 8 bytes or more, else 0
		a = load32(p, 0)<<32 | load32(p, d)
		b = load32(p, n-4)<<32 | load32(p, n-4-d)
	case n > 0:
		a = uint64(*(*byte)(p))<<16 | uint64(*(*byte)(unsafe.Add(p, n>>1)))<<8 | uint64(*(*byte)(unsafe.Add(p, n-1)))
	}
	return nonZero(mum(mum(a^h.k[0], b^h.k[1]), uint64(n)^h.k[2]^key))
}

// fingerprint returns the hash that stands for an attribute in a pair set
// (see pairSet): the hash of its value v seeded by key, the seed of its
// key's identity (keySeed). It returns boolPrint for booleans, which the
// Guard passes whatever their value, and 0 for values a pair set does
// not hold: strings when custom normalizers are configured (they run on
// every value), and types other than strings, integers and floats.
func (h *valueHasher) fingerprint(key uint64, v *attribute.Value, custom bool) uint64 {
	typ, num, str := rawValue(v)
	return h.rawFingerprint(key, typ, num, str, custom)
}

// rawFingerprint is fingerprint of a value read by rawValue.
func (h *valueHasher) rawFingerprint(key uint64, typ attribute.Type, num uint64, str string, custom bool) uint64 {
	switch typ {
	case attribute.BOOL:
		return boolPrint
	case attribute.STRING:
		if !custom {
			return h.keyedStr(key, str)
		}
	case attribute.INT64:
		return h.keyedNum(key, tagInt64, num)
	case attribute.FLOAT64:
		return h.keyedNum(key, tagFloat64, num)
	}
	return 0
}

// valuesInPlace reports whether the Guard reads attribute values in place
// (mirror.ValueOf): each call of attribute.Value's methods copies the
// 48-byte value, twice per attribute on the span path, where reading a
// field in place costs one load. Without it rawValue reads values through
// their methods.
var valuesInPlace = mirror.ValueLayoutMatches

// rawValue returns v's type and, for the types the Guard hashes, its
// number (the bits of an integer or a float) or its string.
func rawValue(v *attribute.Value) (typ attribute.Type, num uint64, str string) {
	if valuesInPlace {
		d := mirror.ValueOf(v)
		return d.Type(), d.Num(), d.Str()
	}
	return rawByMethods(v)
}

// rawByMethods is rawValue through attribute.Value's methods.
//
//go:noinline
func rawByMethods(v *attribute.Value) (typ attribute.Type, num uint64, str string) {
	switch typ = v.Type(); typ {
	case attribute.INT64:
		num = uint64(v.AsInt64())
	case attribute.FLOAT64:
		num = math.Float64bits(v.AsFloat64())
	case attribute.STRING:
		str = v.AsString()
	}
	return typ, num, str
}

// boolPrint is the fingerprint of every boolean; no hash is 0 or 1.
const boolPrint = 1

// keySeed derives the seed of keyedStr and keyedNum from the identity of
// a key string, its address and length, with one multiplication. Two
// strings with the same identity have the same bytes while either is
// alive; the caller keeps that true by using only the identities of keys
// a keyState holds (its alias).
func keySeed(key string) uint64 {
	p := uint64(uintptr(unsafe.Pointer(unsafe.StringData(key))))
	return (p ^ uint64(len(key))<<48) * 0x9e3779b97f4a7c15
}

// medium is keyedStr for strings of 33 to 128 bytes, user agents and
// URLs: 48 bytes a round in three independent lanes, so that the
// multiplications overlap, then the rest 16 bytes at a time and the last
// 16 bytes, which may overlap what came before.
func (h *valueHasher) medium(key uint64, p unsafe.Pointer, n uintptr) uint64 {
	x := uint64(n) ^ h.k[2] ^ key
	y, z := x^h.k[5], x^h.k[6]
	i := uintptr(0)
	for ; n-i > 48; i += 48 {
		x = mum(load64(p, i)^h.k[3], load64(p, i+8)^x)
		y = mum(load64(p, i+16)^h.k[4], load64(p, i+24)^y)
		z = mum(load64(p, i+32)^h.k[5], load64(p, i+40)^z)
	}
	x ^= y ^ z
	for ; n-i > 16; i += 16 {
		x = mum(load64(p, i)^h.k[3], load64(p, i+8)^x)
	}
	return nonZero(mum(load64(p, n-16)^h.k[0], load64(p, n-8)^h.k[1]^x))
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

func (h *valueHasher) num(tag, v uint64) uint64 { return h.keyedNum(0, tag, v) }

// keyedNum is num for a value of the key whose seed is key.
func (h *valueHasher) keyedNum(key, tag, v uint64) uint64 {
	// The splitmix64 finalizer: a bijection, so distinct numbers of one
	// type and key never collide.
	z := v ^ h.salt ^ tag ^ key
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

// nonZero maps 0 and 1 onto 2 and 3, keeping 0 for an empty slot and 1
// for boolPrint.
func nonZero(h uint64) uint64 {
	if h <= boolPrint {
		return h + 2
	}
	return h
}
