// Package e2e proves the pipeline against a tracing backend its users
// run: the otelhttp example exports to Jaeger v2 over OTLP/HTTP
// (protobuf and JSON) and OTLP/gRPC, and the test reads every trace back
// through Jaeger's query API.
//
// It is a module of its own, with no dependency: the example is built
// from ../examples and run as a program. .ci/jaeger starts Jaeger on
// 127.0.0.1; the test skips unless JAEGER_QUERY_URL names its query
// service.
package e2e
