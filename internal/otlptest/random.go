package otlptest

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Random draws spans that use every field of an OTLP span: three resources
// and four scopes, every attribute type (nested slices and maps included),
// events, links, trace states, remote parents, zero and pre-1970 times,
// every status code and span kind plus unknown ones. By default strings
// are valid UTF-8, which the stock exporter requires, and the values stay
// within what a real SDK produces; the two fields below widen the draw.
//
// A Random is not safe for concurrent use. Successive calls to Spans
// continue the same stream of choices.
type Random struct {
	// InvalidUTF8 lets names, keys and string values hold invalid UTF-8:
	// words such as "\xff" and "a\xc3", and raw bytes.
	InvalidUTF8 bool
	// Extremes adds what an encoder must survive although no SDK produces
	// it: nil spans, a nil resource, resources and scopes drawn with their
	// own strings and attributes, an empty attribute set, attribute keys
	// that are empty or repeated, negative and huge dropped counts, any
	// float64 bit pattern (NaN, infinities), times before 1970 and after
	// 2262, any trace flags byte, zero ids, and span contexts that are
	// themselves remote.
	Extremes bool

	src source
}

// source is where a Random takes its choices from; *rand.Rand is one.
type source interface {
	IntN(n int) int
	Int64N(n int64) int64
	Uint32() uint32
	Uint64() uint64
	Float64() float64
	NormFloat64() float64
}

// NewRandom returns a Random drawing from a PCG generator seeded with
// seed: the same seed gives the same spans.
func NewRandom(seed uint64) *Random {
	return &Random{src: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// NewFuzzRandom returns a Random whose choices are read from data, as a
// fuzz test's input drives it: a small choice takes one byte, a 64-bit
// value eight; once data is used up every choice is zero.
func NewFuzzRandom(data []byte) *Random {
	return &Random{src: &fuzzSource{data: data}}
}

// RandomSpans returns n spans from NewRandom(seed), with the default
// draw.
func RandomSpans(seed uint64, n int) []sdktrace.ReadOnlySpan {
	return NewRandom(seed).Spans(n)
}

var (
	words    = []string{"", "GET", "/api/v1/orders", "checkout", "é", "日本語", "db.query", "x"}
	badWords = []string{"\xff", "a\xc3", "caf\xe9", "\xed\xa0\x80", "ok"}
	states   = []string{"", "vendor=opaque", "ot=th:8,congo=t61rcWkgMzE"}
)

func (g *Random) word() string {
	if !g.InvalidUTF8 {
		return words[g.src.IntN(len(words))]
	}
	switch g.src.IntN(3) {
	case 0:
		return words[g.src.IntN(len(words))]
	case 1:
		return badWords[g.src.IntN(len(badWords))]
	}
	b := make([]byte, g.src.IntN(16))
	for i := range b {
		b[i] = byte(g.src.IntN(256))
	}
	return string(b)
}

// float returns a float64 drawn from the default list, or any bit pattern
// with Extremes.
func (g *Random) float() float64 {
	if g.Extremes && g.src.IntN(2) == 0 {
		return math.Float64frombits(g.src.Uint64())
	}
	rng := g.src
	return []float64{0, -1.5, math.Inf(1), math.MaxFloat64, rng.NormFloat64()}[rng.IntN(5)]
}

func (g *Random) value(depth int) attribute.Value {
	rng := g.src
	k := rng.IntN(4)
	switch rng.IntN(12) {
	case 0:
		return attribute.Value{}
	case 1:
		return attribute.BoolValue(rng.IntN(2) == 1)
	case 2:
		return attribute.Int64Value(int64(rng.Uint64()))
	case 3:
		return attribute.Float64Value(g.float())
	case 4:
		return attribute.StringValue(g.word())
	case 5:
		v := make([]bool, k)
		for i := range v {
			v[i] = rng.IntN(2) == 1
		}
		return attribute.BoolSliceValue(v)
	case 6:
		v := make([]int64, k)
		for i := range v {
			v[i] = int64(rng.Uint64())
		}
		return attribute.Int64SliceValue(v)
	case 7:
		v := make([]float64, k)
		for i := range v {
			if g.Extremes {
				v[i] = math.Float64frombits(rng.Uint64())
			} else {
				v[i] = rng.Float64()
			}
		}
		return attribute.Float64SliceValue(v)
	case 8:
		v := make([]string, k)
		for i := range v {
			v[i] = g.word()
		}
		return attribute.StringSliceValue(v)
	case 9:
		b := make([]byte, k*3)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return attribute.ByteSliceValue(b)
	case 10:
		if depth < 2 {
			v := make([]attribute.Value, k)
			for i := range v {
				v[i] = g.value(depth + 1)
			}
			return attribute.SliceValue(v...)
		}
	case 11:
		if depth < 2 {
			kvs := make([]attribute.KeyValue, k)
			for i := range kvs {
				kvs[i] = attribute.KeyValue{Key: attribute.Key(g.word()), Value: g.value(depth + 1)}
			}
			return attribute.MapValue(kvs...)
		}
	}
	return attribute.StringValue(g.word())
}

func (g *Random) attrs(n int) []attribute.KeyValue {
	kvs := make([]attribute.KeyValue, n)
	for i := range kvs {
		key := ""
		if g.Extremes {
			key = g.word() // empty or repeated keys
		} else {
			key = fmt.Sprintf("k%d.%s", i, g.word())
		}
		kvs[i] = attribute.KeyValue{Key: attribute.Key(key), Value: g.value(0)}
	}
	return kvs
}

func (g *Random) spanContext(remote bool) trace.SpanContext {
	var tid trace.TraceID
	var sid trace.SpanID
	if !g.Extremes || g.src.IntN(8) > 0 {
		for i := range tid {
			tid[i] = byte(g.src.Uint32())
		}
		for i := range sid {
			sid[i] = byte(g.src.Uint32())
		}
	}
	ts, err := trace.ParseTraceState(states[g.src.IntN(len(states))])
	if err != nil {
		panic(err) // the states above are valid
	}
	flags := trace.TraceFlags(g.src.IntN(4))
	if g.Extremes {
		flags = trace.TraceFlags(g.src.IntN(256))
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: flags, TraceState: ts, Remote: remote,
	})
}

func (g *Random) time() time.Time {
	n := 10
	if g.Extremes {
		n = 12
	}
	switch g.src.IntN(n) {
	case 0:
		return time.Time{}
	case 1:
		return time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	case 10:
		return time.Unix(0, int64(g.src.Uint64())) // any int64 of nanoseconds
	case 11:
		return time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC) // beyond int64 nanoseconds
	}
	return time.Unix(1_770_000_000, g.src.Int64N(1e15))
}

// count returns a dropped count below n, or with Extremes sometimes a
// negative or huge one.
func (g *Random) count(n int) int {
	if g.Extremes {
		switch g.src.IntN(8) {
		case 0:
			return -g.src.IntN(256)
		case 1:
			return math.MaxInt
		}
	}
	return g.src.IntN(n)
}

func (g *Random) envelopes() ([]*resource.Resource, []instrumentation.Scope) {
	resources := []*resource.Resource{
		resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0",
			attribute.String("service.name", "checkout"), attribute.Int("process.pid", 42)),
		resource.NewSchemaless(attribute.String("service.name", "payments"), attribute.StringSlice("host.ip", []string{"10.0.0.1"})),
		resource.Empty(),
	}
	scopes := []instrumentation.Scope{
		{},
		{Name: "net/http", Version: "v1.2.0", SchemaURL: "https://opentelemetry.io/schemas/1.24.0"},
		{Name: "database/sql", Attributes: attribute.NewSet(attribute.String("db.system", "postgresql"))},
		{Name: "queue", Version: "v0"},
	}
	if g.Extremes {
		resources = append(resources, nil)
		// An empty, non-zero attribute set.
		scopes = append(scopes, instrumentation.Scope{Attributes: attribute.NewSet()})
		for range 2 {
			resources = append(resources, resource.NewWithAttributes(g.word(), g.attrs(g.src.IntN(3))...))
			scopes = append(scopes, instrumentation.Scope{
				Name: g.word(), Version: g.word(), SchemaURL: g.word(),
				Attributes: attribute.NewSet(g.attrs(g.src.IntN(3))...),
			})
		}
	}
	return resources, scopes
}

// Spans returns n spans; with Extremes some of them are nil.
func (g *Random) Spans(n int) []sdktrace.ReadOnlySpan {
	rng := g.src
	resources, scopes := g.envelopes()
	spans := make([]sdktrace.ReadOnlySpan, n)
	for i := range spans {
		if g.Extremes && rng.IntN(16) == 0 {
			continue // a nil span
		}
		s := tracetest.SpanStub{
			Name:                 g.word(),
			SpanContext:          g.spanContext(g.Extremes && rng.IntN(2) == 1),
			SpanKind:             trace.SpanKind(rng.IntN(7)),
			StartTime:            g.time(),
			EndTime:              g.time(),
			Attributes:           g.attrs(rng.IntN(9)),
			Status:               sdktrace.Status{Code: codes.Code(rng.IntN(4)), Description: g.word()},
			DroppedAttributes:    g.count(3),
			DroppedEvents:        g.count(3),
			DroppedLinks:         g.count(3),
			Resource:             resources[rng.IntN(len(resources))],
			InstrumentationScope: scopes[rng.IntN(len(scopes))],
		}
		if rng.IntN(3) > 0 {
			s.Parent = g.spanContext(rng.IntN(2) == 1)
		}
		for range rng.IntN(3) {
			s.Events = append(s.Events, sdktrace.Event{
				Name: g.word(), Time: g.time(), Attributes: g.attrs(rng.IntN(3)), DroppedAttributeCount: g.count(2),
			})
		}
		for range rng.IntN(3) {
			s.Links = append(s.Links, sdktrace.Link{
				SpanContext: g.spanContext(rng.IntN(2) == 1), Attributes: g.attrs(rng.IntN(3)), DroppedAttributeCount: g.count(2),
			})
		}
		spans[i] = s.Snapshot()
	}
	return spans
}

// fuzzSource hands out choices read from fuzz input; once the input is
// used up it hands out zeros. Unlike rand.Rand it never loops on a
// constant input.
type fuzzSource struct{ data []byte }

func (f *fuzzSource) byte() byte {
	if len(f.data) == 0 {
		return 0
	}
	b := f.data[0]
	f.data = f.data[1:]
	return b
}

func (f *fuzzSource) IntN(n int) int {
	if n <= 256 {
		return int(f.byte()) % n
	}
	return int(f.Uint64() % uint64(n))
}

func (f *fuzzSource) Int64N(n int64) int64 { return int64(f.Uint64() % uint64(n)) }

func (f *fuzzSource) Uint32() uint32 {
	var b [4]byte
	for i := range b {
		b[i] = f.byte()
	}
	return binary.LittleEndian.Uint32(b[:])
}

func (f *fuzzSource) Uint64() uint64 {
	var b [8]byte
	for i := range b {
		b[i] = f.byte()
	}
	return binary.LittleEndian.Uint64(b[:])
}

// Float64 is in [0, 1), as rand.Rand's.
func (f *fuzzSource) Float64() float64 { return float64(f.Uint64()<<11>>11) / (1 << 53) }

// NormFloat64 is in [-1, 1); the fuzzer, not a distribution, picks it.
func (f *fuzzSource) NormFloat64() float64 { return 2*f.Float64() - 1 }
