package otlpparity

import (
	"context"
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

// gen draws span parts from a seeded generator.
type gen struct{ rng *rand.Rand }

var words = []string{"", "GET", "/api/v1/orders", "checkout", "é", "日本語", "db.query", "x"}

func (g gen) word() string { return words[g.rng.IntN(len(words))] }

func (g gen) value(depth int) attribute.Value {
	rng := g.rng
	k := rng.IntN(4)
	switch rng.IntN(12) {
	case 0:
		return attribute.Value{}
	case 1:
		return attribute.BoolValue(rng.IntN(2) == 1)
	case 2:
		return attribute.Int64Value(int64(rng.Uint64()))
	case 3:
		return attribute.Float64Value([]float64{0, -1.5, math.Inf(1), math.MaxFloat64, rng.NormFloat64()}[rng.IntN(5)])
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
			v[i] = rng.Float64()
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

func (g gen) attrs(n int) []attribute.KeyValue {
	kvs := make([]attribute.KeyValue, n)
	for i := range kvs {
		kvs[i] = attribute.KeyValue{Key: attribute.Key(fmt.Sprintf("k%d.%s", i, g.word())), Value: g.value(0)}
	}
	return kvs
}

var states = []string{"", "vendor=opaque", "ot=th:8,congo=t61rcWkgMzE"}

func (g gen) spanContext(remote bool) trace.SpanContext {
	var tid trace.TraceID
	var sid trace.SpanID
	for i := range tid {
		tid[i] = byte(g.rng.Uint32())
	}
	for i := range sid {
		sid[i] = byte(g.rng.Uint32())
	}
	ts, err := trace.ParseTraceState(states[g.rng.IntN(len(states))])
	if err != nil {
		panic(err) // the states above are valid
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(g.rng.IntN(4)), TraceState: ts, Remote: remote,
	})
}

func (g gen) time() time.Time {
	switch g.rng.IntN(10) {
	case 0:
		return time.Time{}
	case 1:
		return time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Unix(1_770_000_000, g.rng.Int64N(1e15))
}

// RandomSpans returns n spans drawn from a generator seeded with seed, over
// three resources and four scopes: every span field, every attribute type
// (nested slices and maps included), events, links, trace states, remote
// parents, zero and pre-1970 times, every status code and span kind plus
// unknown ones. Strings are valid UTF-8, which the stock exporter requires.
func RandomSpans(seed uint64, n int) []sdktrace.ReadOnlySpan {
	g := gen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	rng := g.rng
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
	spans := make([]sdktrace.ReadOnlySpan, n)
	for i := range spans {
		s := tracetest.SpanStub{
			Name:                 g.word(),
			SpanContext:          g.spanContext(false),
			SpanKind:             trace.SpanKind(rng.IntN(7)),
			StartTime:            g.time(),
			EndTime:              g.time(),
			Attributes:           g.attrs(rng.IntN(9)),
			Status:               sdktrace.Status{Code: codes.Code(rng.IntN(4)), Description: g.word()},
			DroppedAttributes:    rng.IntN(3),
			DroppedEvents:        rng.IntN(3),
			DroppedLinks:         rng.IntN(3),
			Resource:             resources[rng.IntN(len(resources))],
			InstrumentationScope: scopes[rng.IntN(len(scopes))],
		}
		if rng.IntN(3) > 0 {
			s.Parent = g.spanContext(rng.IntN(2) == 1)
		}
		for range rng.IntN(3) {
			s.Events = append(s.Events, sdktrace.Event{
				Name: g.word(), Time: g.time(), Attributes: g.attrs(rng.IntN(3)), DroppedAttributeCount: rng.IntN(2),
			})
		}
		for range rng.IntN(3) {
			s.Links = append(s.Links, sdktrace.Link{
				SpanContext: g.spanContext(rng.IntN(2) == 1), Attributes: g.attrs(rng.IntN(3)), DroppedAttributeCount: rng.IntN(2),
			})
		}
		spans[i] = s.Snapshot()
	}
	return spans
}

// BenchSpans records n server spans with eight attributes each from a real
// TracerProvider: the snapshots a batch span processor hands an exporter.
func BenchSpans(n int) []sdktrace.ReadOnlySpan {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithResource(
		resource.NewSchemaless(attribute.String("service.name", "orders"), attribute.String("service.version", "1.4.2"))))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr := tp.Tracer("github.com/acme/http", trace.WithInstrumentationVersion("v1.2.0"))
	for i := range n {
		_, s := tr.Start(context.Background(), "GET /api/v1/orders", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", "GET"),
				attribute.String("url.path", "/api/v1/orders"),
				attribute.Int("http.response.status_code", 200),
				attribute.String("server.address", "orders.internal"),
				attribute.Int("server.port", 8080),
				attribute.String("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"),
				attribute.Bool("cache.hit", i%2 == 0),
				attribute.Float64("load", 0.75),
			))
		s.End()
	}
	return rec.Ended()
}
