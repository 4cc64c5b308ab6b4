package mirror

import (
	"reflect"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
)

// Value mirrors attribute.Value, whose methods have value receivers: the
// compiler copies the whole 48-byte value for each call on one held in a
// KeyValue, where reading a field in place is one load.
type Value struct {
	vtype    attribute.Type
	numeric  uint64
	stringly string
	slice    any
}

// ValueLayoutMatches reports whether attribute.Value has Value's layout,
// checked once at start.
var ValueLayoutMatches = Matches(reflect.TypeFor[attribute.Value](), reflect.TypeFor[Value]())

// ValueOf returns the fields of *v in place. Use it only when
// ValueLayoutMatches.
func ValueOf(v *attribute.Value) *Value { return (*Value)(unsafe.Pointer(v)) }

// Type returns the value's type.
func (v *Value) Type() attribute.Type { return v.vtype }

// Num returns the bits of a boolean (0 or 1), an integer or a float.
func (v *Value) Num() uint64 { return v.numeric }

// Str returns the string of a string value.
func (v *Value) Str() string { return v.stringly }
