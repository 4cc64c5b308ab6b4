// Package tracekeeper is the home of a set of OpenTelemetry tracing
// components that are safe to leave on in a busy production service.
//
// The components live in sub-packages and plug into the standard
// go.opentelemetry.io/otel/sdk/trace pipeline:
//
//   - exporter: a non-blocking OTLP span exporter with a bounded queue, a
//     pool of concurrent senders, a drop counter with reasons and a
//     fallback logger. Use it as sdktrace.WithBatcher(exporter.New(...)).
//   - processor: CardinalityGuard, a span processor that bounds the number
//     of distinct span names and attribute values.
//   - sampler: a tail-ish sampler that keeps head-sampled traces and also
//     the traces that turned out to contain errors or to be slow.
//   - queue: the bounded, non-blocking queue the exporter is built on.
//
// This package itself holds no code; it carries the end-to-end tests that
// run the components through a real sdktrace.TracerProvider.
package tracekeeper
