package exporter_test

import (
	"context"
	"log"
	"net/http"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tracekeeper/tracekeeper/exporter"
)

// A program written against otlptracehttp moves by replacing its import
// and its New call, which takes no context and never fails:
//
//	import otlptracehttp "github.com/tracekeeper/tracekeeper/exporter"
//	exp, err := otlptracehttp.New(opts...), error(nil)
//
// The options keep their names and meanings.
func Example_fromOtlptracehttp() {
	exp := exporter.New(
		exporter.WithEndpointURL("http://127.0.0.1:4318/v1/traces"),
		exporter.WithCompression(exporter.GzipCompression),
		exporter.WithRetry(exporter.RetryConfig{Enabled: true, InitialInterval: time.Second, MaxInterval: 10 * time.Second, MaxElapsedTime: time.Minute}),
		// The client stays the program's: Shutdown does not close it.
		exporter.WithHTTPClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}),
	)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
}

// From otlptracegrpc, give the protocol too. A connection passed with
// WithGRPCConn stays the program's: close it after Shutdown.
func Example_fromOtlptracegrpc() {
	conn, err := grpc.NewClient("127.0.0.1:4317", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close() // after tp.Shutdown, deferred below

	exp := exporter.New(
		exporter.WithProtocol(exporter.ProtocolGRPC),
		exporter.WithGRPCConn(conn),
		exporter.WithCompressor("gzip"),
		exporter.WithHeaders(map[string]string{"api-key": "secret"}),
	)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
}
