// Package otlpparity holds what the encoding comparisons of the bench
// module share: the seeded random spans and the benchmark batch of the
// project's OTLP test kit (internal/otlptest), a loopback OTLP/HTTP server
// over the kit's Capture that keeps the bodies it receives, and helpers that
// read requests back (protobuf or OTLP/JSON) and put them in a canonical
// order.
package otlpparity
