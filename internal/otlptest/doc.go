// Package otlptest is the project's one kit for testing OTLP exporters and
// encoders. It holds:
//
//   - loopback receivers: HTTP (OTLP/HTTP, plain or TLS) and GRPC (on TCP
//     or a unix socket), whose answers a test scripts, and Capture, a
//     handler that only keeps bodies;
//   - span fixtures: Spans and Indexed (fixed spans with distinct ids),
//     Attributes8 (the benchmark span's attributes), AllTypes (one
//     attribute of every type), SDKSpans (spans recorded from a real
//     TracerProvider) and Random (seeded or fuzz-driven spans that use
//     every field of an OTLP span);
//   - wire comparison: Expect turns an ended span into a WireSpan, the form
//     it must take on the wire; FromRequests reads the WireSpans out of
//     received requests; CompareSpans fails a test unless both agree.
//
// Receivers listen on 127.0.0.1 only, or a unix socket (NewGRPCUnix), and
// stop when the test ends.
package otlptest
