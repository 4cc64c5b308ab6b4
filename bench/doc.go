// Package bench compares tracekeeper with the stock OpenTelemetry Go
// pipeline, sdktrace.WithBatcher(otlptracehttp.New(...)), side by side in
// the same run on the same spans. It is a module of its own so that the
// stock exporters and the comparison machinery never enter the library's
// go.mod.
//
// The package holds only tests and benchmarks:
//
//	go test -bench . -benchtime=1x   # every benchmark once, as CI runs them
//	go test -bench HotPath           # span start+end cost under RunParallel
//	go test -bench Delivery          # the delivery scenarios, as metrics
//
// The delivery benchmarks take flags after -args: -delivery.duration,
// -delivery.rate and -delivery.outage. The compare command (cmd/compare)
// runs the same scenarios at full length and writes the README's table and
// chart.
package bench
