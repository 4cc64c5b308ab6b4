// Package otlpparity holds what the encoding comparisons of the bench
// module share: seeded random spans that use every field of an OTLP span,
// the benchmark batch recorded from a real TracerProvider, a loopback
// OTLP/HTTP server that keeps the bodies it receives, and helpers that read
// requests back (protobuf or OTLP/JSON) and put them in a canonical order.
package otlpparity
