// Package otlpenc encodes finished spans as OTLP ExportTraceServiceRequest
// protobuf messages, straight from sdktrace.ReadOnlySpan, without building
// the generated tracepb structs first.
//
// # Model
//
// An Encoder turns a batch of spans into one or more Requests. It groups the
// spans by resource and instrumentation scope the way the stock
// otlptrace exporter does (resources are grouped by their attribute set,
// scopes by their full value) and writes the protobuf wire format directly,
// in one pass over each span: every span is appended to a pooled arena,
// nested messages behind a length placeholder filled in once their body is
// written. A span attribute that is the one an earlier span of the batch
// had at the same position (the same key and value, down to the address of
// their strings, as with constant keys and values) is copied from that
// span's encoding rather than encoded and checked again. When the batch is
// one request of one resource and scope, the usual case, the envelopes are
// written in room left in front of the spans and the arena is the request;
// otherwise the spans are copied into one pooled buffer of exactly the
// right size per request.
//
// The SDK's span snapshots, span contexts, attribute values and sets are
// read in place, through structs that mirror their unexported fields,
// when a check of their layouts, made once, finds them unchanged; any
// other span, or a changed layout, is read through the public methods.
//
// Decoding the output yields a message proto.Equal to what the stock
// exporter sends for the same spans, with two deliberate differences:
//
//   - Resources appear in the order they are first seen in the batch; the
//     stock exporter emits them in map iteration order, which is random.
//   - Strings that are not valid UTF-8 are repaired (each invalid sequence
//     becomes U+FFFD) and counted in Result.Repaired, where the stock
//     exporter fails the whole request.
//
// The encoded resource and scope envelopes are cached per *resource.Resource
// and per instrumentation.Scope, so in the steady state encoding a batch
// performs no allocation beyond what the attribute package needs to hand
// out slice-valued attributes.
//
// Encode can cap the size of each request (for example at a collector's
// 4 MiB gRPC limit): it splits between spans, repeating the resource and
// scope envelopes in every request, and reports spans that cannot fit on
// their own in Result.TooLarge instead of failing the batch.
//
// # Working with encoded requests
//
// Split halves an encoded request after the server refused it as too
// large, CountSpans counts its spans, and AppendJSON renders it as
// OTLP/JSON (the encoding of the OTLP specification: hexadecimal trace and
// span ids, enums as numbers) so dropped spans can be written out and
// replayed later.
//
// # Concurrency
//
// An Encoder is not safe for concurrent use; keep one per goroutine. A
// sync.Pool alone loses it, with the arena and caches it has grown, at
// every other garbage collection, which a process ending spans fast runs
// tens of times a second. Requests are independent of the Encoder that produced them and
// must be released exactly once. Split, CountSpans and AppendJSON are safe
// for concurrent use.
package otlpenc
