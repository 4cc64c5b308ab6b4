package scenario

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tracekeeper/tracekeeper/exporter"
)

// Kind names a pipeline under comparison.
type Kind string

const (
	// Stock is sdktrace.WithBatcher(otlptracehttp.New(WithEndpoint,
	// WithInsecure)) with every other setting at its default.
	Stock Kind = "stock"
	// Ours is sdktrace.WithBatcher(exporter.New(WithEndpoint,
	// WithInsecure)) with every other setting at its default: the number
	// of requests in flight adapts to the backend.
	Ours Kind = "tracekeeper"
	// OursFixed is Ours with a fixed pool of workers
	// (exporter.WithWorkers(PipelineConfig.Workers)) instead of the
	// adaptive concurrency. Only the overload scenarios run it, with as
	// many workers as the backend serves requests at once.
	OursFixed Kind = "tracekeeper-fixed"
	// OursSpool is Ours with a disk spool (exporter.WithSpool in
	// PipelineConfig.SpoolDir). Only the scenarios with Spool set run it.
	OursSpool Kind = "tracekeeper-spool"
)

// Kinds lists the pipelines every scenario runs, in the order tables show
// them.
var Kinds = []Kind{Stock, Ours}

// PipelineConfig is what NewPipeline may change from the pipelines'
// defaults.
type PipelineConfig struct {
	// BSPQueue, when positive, sets the BatchSpanProcessor's queue size
	// (sdktrace.WithMaxQueueSize) for every pipeline; zero keeps the
	// SDK's default.
	BSPQueue int
	// Gzip compresses request bodies with gzip in every pipeline
	// (otlptracehttp.WithCompression, exporter.WithCompression).
	Gzip bool
	// MemoryBudget, when positive, sets our exporter's memory budget
	// (exporter.WithMemoryBudget); zero keeps its default.
	MemoryBudget int
	// Workers is the fixed number of requests in flight of OursFixed
	// (exporter.WithWorkers); other pipelines ignore it.
	Workers int
	// H2C makes every pipeline send HTTP/2 without TLS (prior knowledge)
	// through a client of its own (otlptracehttp.WithHTTPClient,
	// exporter.WithHTTPClient), to measure it against HTTP/1.1; the
	// receiver must accept it (ReceiverConfig.H2C).
	H2C bool
	// SpoolDir and SpoolMaxBytes are the directory and disk budget of
	// OursSpool's spool (exporter.WithSpool); other pipelines ignore
	// them.
	SpoolDir      string
	SpoolMaxBytes int64
}

// Pipeline is a TracerProvider whose spans go through a BatchSpanProcessor
// to one of the exporters under comparison.
type Pipeline struct {
	Kind     Kind
	Provider *sdktrace.TracerProvider
	// Exporter is our exporter, for its Stats; nil for the stock pipeline.
	Exporter *exporter.Exporter

	counter *countingExporter
}

// reports counts the errors and warnings the pipelines report: the stock
// one through otel.Handle, ours through its fallback logger.
var (
	reports        atomic.Int64
	installHandler sync.Once
)

// Reports returns how many errors and warnings the pipelines have reported
// since the process started.
func Reports() int64 { return reports.Load() }

// NewPipeline returns a pipeline of the given kind sending to endpoint
// ("host:port", plaintext), with cfg's changes from the defaults. Building
// the first pipeline replaces the global OpenTelemetry error handler by a
// counter (see Reports), so that the stock exporter's failures are counted
// rather than printed.
func NewPipeline(ctx context.Context, kind Kind, endpoint string, cfg PipelineConfig, opts ...sdktrace.TracerProviderOption) (*Pipeline, error) {
	installHandler.Do(func() {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) { reports.Add(1) }))
	})
	p := &Pipeline{Kind: kind}
	var inner sdktrace.SpanExporter
	switch kind {
	case Stock:
		sopts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(endpoint), otlptracehttp.WithInsecure()}
		if cfg.Gzip {
			sopts = append(sopts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		}
		if cfg.H2C {
			sopts = append(sopts, otlptracehttp.WithHTTPClient(h2cClient()))
		}
		exp, err := otlptracehttp.New(ctx, sopts...)
		if err != nil {
			return nil, fmt.Errorf("scenario: stock exporter: %w", err)
		}
		inner = exp
	case Ours, OursFixed, OursSpool:
		eopts := []exporter.Option{exporter.WithEndpoint(endpoint), exporter.WithInsecure(),
			exporter.WithLogger(countingLogger())}
		if cfg.Gzip {
			eopts = append(eopts, exporter.WithCompression(exporter.GzipCompression))
		}
		if cfg.MemoryBudget > 0 {
			eopts = append(eopts, exporter.WithMemoryBudget(cfg.MemoryBudget))
		}
		if cfg.H2C {
			eopts = append(eopts, exporter.WithHTTPClient(h2cClient()))
		}
		if kind == OursFixed {
			if cfg.Workers <= 0 {
				return nil, fmt.Errorf("scenario: pipeline %s needs a positive number of workers", kind)
			}
			eopts = append(eopts, exporter.WithWorkers(cfg.Workers))
		}
		if kind == OursSpool {
			if cfg.SpoolDir == "" {
				return nil, fmt.Errorf("scenario: pipeline %s needs a spool directory", kind)
			}
			eopts = append(eopts, exporter.WithSpool(cfg.SpoolDir, cfg.SpoolMaxBytes))
		}
		p.Exporter = exporter.New(eopts...)
		inner = p.Exporter
	default:
		return nil, fmt.Errorf("scenario: unknown pipeline %q", kind)
	}
	p.counter = &countingExporter{next: inner, done: make(chan struct{})}
	var bsp []sdktrace.BatchSpanProcessorOption
	if cfg.BSPQueue > 0 {
		bsp = append(bsp, sdktrace.WithMaxQueueSize(cfg.BSPQueue))
	}
	all := append([]sdktrace.TracerProviderOption{
		sdktrace.WithResource(Resource()),
		sdktrace.WithBatcher(p.counter, bsp...),
	}, opts...)
	p.Provider = sdktrace.NewTracerProvider(all...)
	return p, nil
}

// h2cClient is an HTTP client that speaks HTTP/2 without TLS only.
func h2cClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: p}}
}

// Resource is the resource of the generated spans.
func Resource() *resource.Resource {
	return resource.NewSchemaless(
		attribute.String("service.name", "checkout"),
		attribute.String("service.version", "1.8.2"),
		attribute.String("deployment.environment.name", "bench"),
	)
}

// Handed is the number of spans the BatchSpanProcessor has handed to the
// exporter; the rest of the ended spans were dropped by the processor's
// queue.
func (p *Pipeline) Handed() int64 { return p.counter.handed.Load() }

// Shutdown shuts the provider down within ctx's deadline. When the deadline
// passes first it stops the exporter at once, abandoning what it still
// holds, so that the processor's goroutine ends soon.
func (p *Pipeline) Shutdown(ctx context.Context) error {
	err := p.Provider.Shutdown(ctx)
	if err != nil {
		expired, cancel := context.WithCancel(context.Background())
		cancel()
		_ = p.counter.next.Shutdown(expired)
	}
	return err
}

// Stopped is closed once the BatchSpanProcessor has finished and shut the
// exporter down.
func (p *Pipeline) Stopped() <-chan struct{} { return p.counter.done }

// countingExporter counts the spans handed to the exporter it wraps and
// tells when it was shut down.
type countingExporter struct {
	next   sdktrace.SpanExporter
	handed atomic.Int64
	once   sync.Once
	done   chan struct{}
}

var _ sdktrace.SpanExporter = (*countingExporter)(nil)

func (c *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	c.handed.Add(int64(len(spans)))
	return c.next.ExportSpans(ctx, spans)
}

func (c *countingExporter) Shutdown(ctx context.Context) error {
	err := c.next.Shutdown(ctx)
	c.once.Do(func() { close(c.done) })
	return err
}

// countingLogger is a fallback logger for our exporter that counts its
// warnings and errors in reports instead of printing them.
func countingLogger() *zap.Logger {
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.AddSync(io.Discard), zapcore.WarnLevel)
	return zap.New(zapcore.RegisterHooks(core, func(zapcore.Entry) error {
		reports.Add(1)
		return nil
	}))
}
