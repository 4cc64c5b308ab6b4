// Package autoexport registers the tracekeeper exporter with
// go.opentelemetry.io/contrib/exporters/autoexport, so that a service
// that builds its span exporter with autoexport.NewSpanExporter can choose
// tracekeeper at deployment:
//
//	import (
//		"go.opentelemetry.io/contrib/exporters/autoexport"
//		_ "github.com/tracekeeper/tracekeeper/contrib/autoexport"
//	)
//
//	exp, err := autoexport.NewSpanExporter(ctx) // OTEL_TRACES_EXPORTER=tracekeeper
//
// The exporter is configured entirely by the standard environment
// variables, as exporter.New() with no options is:
// OTEL_EXPORTER_OTLP_[TRACES_]{ENDPOINT, PROTOCOL (http/protobuf, http/json
// or grpc), HEADERS, COMPRESSION, TIMEOUT, INSECURE, CERTIFICATE,
// CLIENT_CERTIFICATE, CLIENT_KEY}.
//
// It is a module of its own so that autoexport's dependencies (every
// stock exporter, Prometheus) never enter the library's go.mod.
package autoexport

import (
	"context"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tracekeeper/tracekeeper/exporter"
)

// Name is the value of OTEL_TRACES_EXPORTER that selects tracekeeper.
const Name = "tracekeeper"

func init() {
	// RegisterSpanExporter panics on a name already taken: importing this
	// package twice under two paths would be a build mistake worth seeing.
	autoexport.RegisterSpanExporter(Name, func(context.Context) (sdktrace.SpanExporter, error) {
		// New never fails: an invalid environment is logged at once and
		// the exporter counts its spans as dropped (reason config).
		return exporter.New(), nil
	})
}
