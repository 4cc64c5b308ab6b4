// Command otelgrpc is a gRPC service and its client, instrumented with
// otelgrpc, exporting through the full tracekeeper pipeline. The service
// is the standard health service; the client asks about one service it
// knows and, one call in three, one it does not, which fails with
// NOT_FOUND so the sampler has errors to keep.
//
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_SERVICE_NAME=health go run ./otelgrpc
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tracekeeper/tracekeeper/examples/pipeline"
)

func main() {
	calls := flag.Int("calls", 12, "calls to make, then exit")
	flag.Parse()
	ctx := context.Background()
	p, err := pipeline.New(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			log.Print(err)
		}
	}()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer(grpc.StatsHandler(otelgrpc.NewServerHandler()))
	hs := health.NewServer()
	hs.SetServingStatus("orders", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	conn, err := grpc.NewClient(ln.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	tracer := otel.Tracer("github.com/tracekeeper/tracekeeper/examples/otelgrpc")
	for i := range *calls {
		service := "orders"
		if i%3 == 2 {
			service = "payments" // unknown: NOT_FOUND
		}
		ctx, span := tracer.Start(ctx, "check health")
		span.SetAttributes(attribute.String("health.service", service))
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		fmt.Printf("trace %s %s %v\n", span.SpanContext().TraceID(), resp.GetStatus(), err)
		span.End()
	}
}
