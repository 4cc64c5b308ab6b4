package mirror

import (
	"reflect"
	"sync/atomic"
	"unsafe"
)

// ifaceWords is the layout of a non-empty interface value.
type ifaceWords struct {
	itab, data unsafe.Pointer
}

// learnt is what a learner found out about the dependency's type from the
// first value it saw: the pointer type, and whether it has the mirror's
// layout. There is one such type per program, so it is learnt once.
type learnt struct {
	typ reflect.Type
	ok  bool
	// itab is the type word of an interface value holding such a
	// pointer, or nil if an interface value was not found to be made of
	// a type word and a data word: the learner then compares reflect
	// types instead.
	itab unsafe.Pointer
}

// learner recognises the values of one dependency type that a mirror
// reads in place.
type learner struct {
	kind atomic.Pointer[learnt]
	// itab is the type word of the kind learnt plus one, once it is
	// known to have the mirrored layout, or 0, which no type word plus
	// one is, not even that of a nil interface value.
	itab atomic.Uintptr
	// is reports whether a pointer type is the dependency's; fits
	// whether its element has the mirror's layout.
	is, fits func(reflect.Type) bool
}

// known returns the data word of the interface value at w when its type
// word is the one learnt, and nil otherwise: small enough to be inlined.
func (l *learner) known(w *ifaceWords) unsafe.Pointer {
	if uintptr(w.itab)+1 != l.itab.Load() {
		return nil
	}
	return w.data
}

// of returns what an interface value points to when it holds the
// dependency's type with the mirrored layout, and nil otherwise, learning
// the type from the first such value; w is the value's words and v its
// reflect.Value.
func (l *learner) of(w *ifaceWords, v reflect.Value) unsafe.Pointer {
	if !v.IsValid() {
		return nil
	}
	t := v.Type()
	k := l.kind.Load()
	if k == nil {
		if !l.is(t) {
			return nil
		}
		k = &learnt{typ: t, ok: l.fits(t.Elem())}
		if w.data == v.UnsafePointer() && w.itab != nil {
			k.itab = w.itab
		}
		if !l.kind.CompareAndSwap(nil, k) {
			k = l.kind.Load()
		} else if k.ok && k.itab != nil {
			l.itab.Store(uintptr(k.itab) + 1)
		}
	}
	if !k.ok || k.typ != t {
		return nil
	}
	return v.UnsafePointer()
}

// sdkType returns a test of whether a type is a pointer to the SDK trace
// package's type of that name.
func sdkType(name string) func(reflect.Type) bool {
	return func(t reflect.Type) bool {
		return t != nil && t.Kind() == reflect.Pointer && t.Elem().Name() == name && t.Elem().PkgPath() == sdkTracePkg
	}
}
