package processor_test

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracekeeper/tracekeeper/processor"
)

// The recommended wiring: the guard wraps the processor that exports. In
// production the downstream is sdktrace.NewBatchSpanProcessor(exporter);
// here a synchronous processor feeds an in-memory exporter so the output is
// deterministic.
func ExampleCardinalityGuard() {
	exp := tracetest.NewInMemoryExporter()
	guard := processor.CardinalityGuard(
		processor.WithKeyLimit("enduser.id", 2),
		processor.WithDownstream(sdktrace.NewSimpleSpanProcessor(exp)),
		processor.WithMeterProvider(noop.NewMeterProvider()),
	)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(guard))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tracer := tp.Tracer("shop")

	for _, req := range []struct{ path, user string }{
		{"/users/1001/orders", "ann"},
		{"/users/1002/orders", "bob"},
		{"/users/1003/orders", "cyd"},
		{"/users/1001/orders", "ann"},
	} {
		_, span := tracer.Start(context.Background(), "GET "+req.path,
			trace.WithAttributes(attribute.String("url.path", req.path)))
		span.SetAttributes(attribute.String("enduser.id", req.user)) // set after start: still guarded
		span.End()
	}

	for _, s := range exp.GetSpans() {
		attrs := attribute.NewSet(s.Attributes...)
		path, _ := attrs.Value("url.path")
		user, _ := attrs.Value("enduser.id")
		_, overflow := attrs.Value(processor.OverflowKey)
		fmt.Printf("%s | url.path=%s enduser.id=%s overflow=%v\n", s.Name, path.AsString(), user.AsString(), overflow)
	}
	st := guard.Stats()
	fmt.Printf("normalized=%d replaced=%d marked=%d\n", st.Normalized, st.ReplacedOverLimit, st.MarkedSpans)
	// Output:
	// GET /users/{id}/orders | url.path=/users/{id}/orders enduser.id=ann overflow=false
	// GET /users/{id}/orders | url.path=/users/{id}/orders enduser.id=bob overflow=false
	// GET /users/{id}/orders | url.path=/users/{id}/orders enduser.id=tracekeeper.overflow overflow=true
	// GET /users/{id}/orders | url.path=/users/{id}/orders enduser.id=ann overflow=false
	// normalized=8 replaced=1 marked=1
}

// The plain wiring rewrites spans as they start, so it covers the name and
// the attributes given to Start, but not attributes set later.
func ExampleCardinalityGuard_plain() {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(processor.CardinalityGuard(processor.WithMeterProvider(noop.NewMeterProvider()))),
		sdktrace.WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(exp)),
	)
	defer func() { _ = tp.Shutdown(context.Background()) }()
	_, span := tp.Tracer("shop").Start(context.Background(), "GET /users/1001",
		trace.WithAttributes(attribute.String("url.path", "/users/1001")))
	span.SetAttributes(attribute.String("http.route", "/users/1001"))
	span.End()

	s := exp.GetSpans()[0]
	attrs := attribute.NewSet(s.Attributes...)
	path, _ := attrs.Value("url.path")
	route, _ := attrs.Value("http.route")
	fmt.Println(s.Name)
	fmt.Println("url.path:", path.AsString())
	fmt.Println("http.route:", route.AsString())
	// Output:
	// GET /users/{id}
	// url.path: /users/{id}
	// http.route: /users/1001
}

// A Normalizer of your own runs before the built-in one, on every string
// attribute and span name (with an empty key).
func ExampleWithNormalizer() {
	maskEmail := func(key, v string) (string, bool) {
		if key != "enduser.email" {
			return v, false
		}
		if at := strings.IndexByte(v, '@'); at > 0 {
			return "{user}" + v[at:], true
		}
		return v, false
	}
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(processor.CardinalityGuard(
		processor.WithNormalizer(maskEmail),
		processor.WithDownstream(sdktrace.NewSimpleSpanProcessor(exp)),
		processor.WithMeterProvider(noop.NewMeterProvider()),
	)))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	_, span := tp.Tracer("shop").Start(context.Background(), "signup")
	span.SetAttributes(attribute.String("enduser.email", "ann@example.com"))
	span.End()

	fmt.Println(exp.GetSpans()[0].Attributes[0].Value.AsString())
	// Output:
	// {user}@example.com
}

// Report-only mode decides and counts as the guard would act, rewrites
// nothing, and marks the spans it would have changed, so that limits can
// be sized on live traffic first.
func ExampleWithReportOnly() {
	exp := tracetest.NewInMemoryExporter()
	guard := processor.CardinalityGuard(
		processor.WithReportOnly(true),
		processor.WithKeyLimit("enduser.id", 1),
		processor.WithDownstream(sdktrace.NewSimpleSpanProcessor(exp)),
		processor.WithMeterProvider(noop.NewMeterProvider()),
	)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(guard))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	for _, user := range []string{"ann", "bob", "cyd"} {
		_, span := tp.Tracer("shop").Start(context.Background(), "checkout",
			trace.WithAttributes(attribute.String("enduser.id", user)))
		span.End()
	}
	for _, s := range exp.GetSpans() {
		attrs := attribute.NewSet(s.Attributes...)
		user, _ := attrs.Value("enduser.id")
		would, _ := attrs.Value(processor.WouldOverflowKey)
		fmt.Printf("enduser.id=%s would_overflow=%v\n", user.AsString(), would.AsBool())
	}
	for _, o := range guard.Stats().TopOffenders {
		fmt.Printf("would replace %d values of %s %s\n", o.Replaced, o.Target, o.Key)
	}
	// Output:
	// enduser.id=ann would_overflow=false
	// enduser.id=bob would_overflow=true
	// enduser.id=cyd would_overflow=true
	// would replace 2 values of attribute enduser.id
}

// HTTP server spans named after their route, as the semantic conventions
// recommend; the route is usually known only after the span started, which
// the wrapping wiring sees.
func ExampleWithHTTPRouteSpanNames() {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(processor.CardinalityGuard(
		processor.WithHTTPRouteSpanNames(true),
		processor.WithDownstream(sdktrace.NewSimpleSpanProcessor(exp)),
		processor.WithMeterProvider(noop.NewMeterProvider()),
	)))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	_, span := tp.Tracer("http").Start(context.Background(), "GET",
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", "GET"),
			attribute.String("url.full", "http://127.0.0.1:8080/users/123")))
	span.SetAttributes(attribute.String("http.route", "/users/{id}")) // set by the router
	span.End()

	s := exp.GetSpans()[0]
	attrs := attribute.NewSet(s.Attributes...)
	u, _ := attrs.Value("url.full")
	fmt.Println(s.Name)
	fmt.Println(u.AsString())
	// Output:
	// GET /users/{id}
	// http://127.0.0.1:8080/users/{id}
}
