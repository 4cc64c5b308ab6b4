// Package exporter provides a non-blocking OTLP span exporter for the
// OpenTelemetry Go SDK, a drop-in replacement for otlptracehttp under
// sdktrace.WithBatcher:
//
//	exp := exporter.New(exporter.WithEndpoint("collector:4318"), exporter.WithInsecure())
//	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
//
// # Model
//
// The stock pipeline sends one request at a time from the
// BatchSpanProcessor's goroutine, retries included, so a slow or failing
// backend backs the processor's queue up and spans are dropped without a
// word. This exporter separates the two sides:
//
//   - ExportSpans encodes the spans straight to OTLP protobuf (no
//     intermediate structures), puts the bytes on a bounded queue, and
//     returns. It never waits on the network, the disk or the logger. One
//     memory budget (WithMemoryBudget) bounds queued and in-flight spans;
//     when it is full the spans go to the disk spool (WithSpool) or are
//     dropped with reason queue_full (WithBlockOnFull makes it wait a
//     bounded time instead).
//   - A dispatcher sends each request on a goroutine of its own, as many
//     at once as an adaptive limit allows (AIMD on round-trip time and
//     backpressure, up to WithMaxConcurrency; WithWorkers fixes it). When a
//     backlog builds, it joins several queued batches into one request, up
//     to WithMaxRequestSize.
//   - Requests are retried as the OTLP specification asks: HTTP 429, 502,
//     503 and 504 and connection errors, with exponential backoff, jitter
//     and the server's Retry-After honoured, within a total budget
//     (WithRetry). Other answers, redirects included (they are never
//     followed), are permanent failures. A request refused as too large
//     (HTTP 413) is split in two and each half retried; a single span that
//     cannot fit is dropped with reason too_large. A record of the disk
//     spool delivered in part goes back to it holding only the rest.
//   - A backend that reports a partial success has the rejected spans
//     counted with reason rejected.
//   - Invalid UTF-8 in a string is replaced by U+FFFD and counted, instead of
//     failing the whole request.
//
// # Accounting
//
// Every span given to ExportSpans is accepted and ends either exported or
// dropped with a reason (see Reason). Stats returns a consistent snapshot
// in which Accepted == Exported + Dropped.Total() + Queued + Spooled +
// InFlight holds at every moment. The same figures are published through
// the MeterProvider (WithMeterProvider):
//
//	otel.sdk.exporter.span.exported       counter {span}; error.type = drop reason on failures
//	otel.sdk.exporter.span.inflight       updown counter {span}; Queued + Spooled + InFlight
//	otel.sdk.exporter.operation.duration  histogram s, per export operation; http.response.status_code or rpc.response.status_code, error.type
//	tracekeeper.exporter.queue.size       gauge {span}
//	tracekeeper.exporter.queue.capacity   gauge {span}
//	tracekeeper.exporter.queue.bytes      gauge By
//	tracekeeper.exporter.memory.used      gauge By (queued and in flight)
//	tracekeeper.exporter.memory.budget    gauge By
//	tracekeeper.exporter.concurrency.limit gauge {request}
//	tracekeeper.exporter.round_trip       gauge s
//	tracekeeper.exporter.string.repaired  counter {value}
//	tracekeeper.exporter.dropped_writer.unwritten counter {request}
//
// # Fallback logger
//
// Drops, retries and configuration errors are reported to a *zap.Logger
// (WithLogger; default: warnings and errors to standard error), aggregated
// so an outage cannot flood the log: at most one report per interval
// (WithLogInterval), with counts per reason and the last cause of each.
// The reports, the configuration's own included, are written by a
// goroutine of their own: a slow logger delays nothing else, neither New
// nor a Shutdown without a deadline, which waits for it at most a second. Header values are never logged, even when a
// backend's answer repeats one. WithDroppedSpansWriter additionally writes
// each dropped request as one line of OTLP/JSON for replay, also from a
// goroutine of its own behind a bounded hand-off.
//
// # Configuration errors
//
// New never fails, so it can be written inline in sdktrace.WithBatcher. An
// invalid setting is logged at error level at once (by the reporter's
// goroutine), and every ExportSpans
// returns the error and counts its spans dropped with reason config;
// ConfigError returns it at once.
//
// # Flushing and shutdown
//
// TracerProvider.ForceFlush moves the BatchSpanProcessor's spans into
// ExportSpans and returns before they are sent; Exporter.ForceFlush waits
// for the sending. Flush both when it matters (for example before a
// serverless function freezes). TracerProvider.Shutdown calls Shutdown,
// which sends what is queued within its context's deadline and abandons
// the rest (reason shutdown, or kept on disk with a spool, unless its
// directory vanished: then spool_error, and Shutdown's error counts them);
// every call returns by its context's deadline, plus at most 100ms.
package exporter
