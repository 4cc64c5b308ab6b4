// Command otelhttp is an HTTP service and its client, instrumented with
// otelhttp, exporting through the full tracekeeper pipeline: exporter,
// cardinality guard and error-keeping sampler. One request in four fails,
// so the sampler has errors to keep.
//
// By default it starts the server on a free loopback port, sends
// -requests requests to it, prints one line per request ("trace <id>
// <status>"), and exits after flushing. With -listen and -requests 0 it
// only serves, until interrupted.
//
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_SERVICE_NAME=orders go run ./otelhttp
//	OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 go run ./otelhttp
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracekeeper/tracekeeper/examples/pipeline"
)

var tracer = otel.Tracer("github.com/tracekeeper/tracekeeper/examples/otelhttp")

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	requests := flag.Int("requests", 20, "requests to send to the server, then exit; 0 serves until interrupted")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	p, err := pipeline.New(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			log.Print(err)
		}
	}()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: routes(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	if *requests == 0 {
		log.Printf("serving on http://%s/orders/{id}", ln.Addr())
		<-ctx.Done()
		return
	}
	client := &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport), Timeout: 5 * time.Second}
	var previous trace.SpanContext
	for i := 1; i <= *requests && ctx.Err() == nil; i++ {
		previous = order(ctx, client, "http://"+ln.Addr().String(), i, previous)
	}
}

// order is one client operation: a root span, linked to the previous
// one, around an instrumented GET.
func order(ctx context.Context, client *http.Client, base string, i int, previous trace.SpanContext) trace.SpanContext {
	var links []trace.Link
	if previous.IsValid() {
		links = append(links, trace.Link{SpanContext: previous, Attributes: []attribute.KeyValue{attribute.String("link.reason", "previous order")}})
	}
	ctx, span := tracer.Start(ctx, "checkout", trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int("order.number", i)))
	defer span.End()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/orders/"+strconv.Itoa(i), nil)
	if err != nil {
		log.Fatal(err)
	}
	status := 0
	resp, err := client.Do(req)
	if err == nil {
		status = resp.StatusCode
		_ = resp.Body.Close()
	}
	if err != nil || status >= 500 {
		span.SetStatus(codes.Error, fmt.Sprintf("order %d failed", i))
	}
	fmt.Printf("trace %s %d\n", span.SpanContext().TraceID(), status)
	return span.SpanContext()
}

func routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /orders/{id}", otelhttp.NewHandler(http.HandlerFunc(getOrder), "GET /orders/{id}"))
	return mux
}

// getOrder fails one request in four.
func getOrder(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		http.Error(w, "bad id", http.StatusBadRequest)
		return
	}
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("http.route", "/orders/{id}"))
	if err := load(r.Context(), id); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "order %d\n", id)
}

func load(ctx context.Context, id int) error {
	_, span := tracer.Start(ctx, "load order", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.Int("order.id", id), attribute.String("db.system.name", "postgresql")))
	defer span.End()
	if id%2 == 1 {
		span.AddEvent("cache miss", trace.WithAttributes(attribute.String("cache", "orders")))
	}
	if id%4 == 0 {
		err := errors.New("connection reset by peer")
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	return nil
}
