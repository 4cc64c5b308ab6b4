// Package scenario is the machinery shared by the comparison benchmarks and
// the compare command: it runs a fixed offered load through a tracing
// pipeline into an embedded OTLP/HTTP receiver and measures what arrived.
//
// # Pieces
//
//   - Receiver is a loopback OTLP/HTTP server (net/http on 127.0.0.1). It
//     counts the spans of every ExportTraceServiceRequest it answers with
//     success, can hold each answer back by a fixed latency, and can go
//     through an outage: answering 503 Service Unavailable, or refusing
//     connections altogether, until it is told to recover. It can also be
//     an overloaded backend that serves a fixed number of requests at once
//     and answers 503 to the rest.
//   - Generate ends spans at a fixed offered rate from several goroutines,
//     each span with the same eight attributes a typical HTTP server span
//     carries, and records how long every span.End() call took in a
//     Histogram.
//   - NewPipeline builds the two pipelines under comparison with their
//     default settings: the stock sdktrace.WithBatcher(otlptracehttp.New(...))
//     and sdktrace.WithBatcher(exporter.New(...)); and, for the overload
//     scenario, ours with a fixed pool of workers as large as the backend's
//     capacity. PipelineConfig changes the same few settings for all
//     alike: the BatchSpanProcessor's queue, gzip, our memory budget.
//   - Run puts them together for one Scenario: it starts a receiver and a
//     pipeline, offers the load, shuts the pipeline down within a deadline
//     and reports a Result: spans ended and delivered, span.End() latency
//     quantiles, process CPU time and peak heap, and for ours what its
//     Stats showed while the load ran (concurrency limit, round trip,
//     memory held).
//
// # Fairness
//
// Both pipelines see the same spans at the same offered rate, on the same
// machine, one after the other in the same process, with the same receiver.
// The receiver runs in the process too, so its CPU time is counted in both
// pipelines' figures in proportion to what each delivered. Neither pipeline
// is tuned: each runs with its defaults. The only changes are that errors
// and warnings are counted instead of printed (the stock pipeline reports
// through otel.Handle, ours through its fallback logger), and that both
// exporters are wrapped by a counter of the spans handed to ExportSpans,
// one atomic addition per batch.
//
// Delivered means that the receiver answered the request with success
// before the pipeline's shutdown deadline. For the stock pipeline,
// everything ended but not delivered was dropped without a word; ours
// accounts for every span in exporter.Stats.
package scenario
