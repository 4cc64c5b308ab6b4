package processor

import (
	"math"
	"testing"

	"go.opentelemetry.io/otel/attribute"
)

// TestValueMirror checks that attribute values are read in place, which
// needs mirror.Value to mirror attribute.Value exactly: when an upgrade of
// the attribute package changes Value this test fails (the Guard then
// reads values through their methods, correct but slower) until mirror.Value
// follows. It also checks that both readings agree.
func TestValueMirror(t *testing.T) {
	if !valuesInPlace {
		t.Fatal("attribute.Value no longer has valueData's layout: update mirror.Value")
	}
	for _, v := range []attribute.Value{
		{},
		attribute.BoolValue(true),
		attribute.BoolValue(false),
		attribute.Int64Value(0),
		attribute.Int64Value(-1),
		attribute.Int64Value(math.MinInt64),
		attribute.IntValue(200),
		attribute.Float64Value(0.25),
		attribute.Float64Value(math.Copysign(0, -1)),
		attribute.Float64Value(math.NaN()),
		attribute.StringValue(""),
		attribute.StringValue("/users/{id}"),
		attribute.StringSliceValue([]string{"a"}),
		attribute.Int64SliceValue([]int64{1}),
	} {
		typ, num, str := rawValue(&v)
		mt, mn, ms := rawByMethods(&v)
		if typ != mt || str != ms || (typ != attribute.BOOL && num != mn) {
			t.Errorf("%s: in place (%v, %#x, %q), through methods (%v, %#x, %q)", v.Emit(), typ, num, str, mt, mn, ms)
		}
	}
}
