// Package otelconf builds the OpenTelemetry SDK from a declarative
// configuration file (go.opentelemetry.io/contrib/otelconf, the format
// OTEL_CONFIG_FILE names) with tracekeeper in the trace pipeline:
//
//	cfg, err := otelconf.ParseYAML(file) // go.opentelemetry.io/contrib/otelconf
//	sdk, err := tkconf.NewSDK(cfg,
//		tkconf.WithCardinalityGuard(),                  // optional
//		tkconf.WithErrorKeeping(sampler.WithRatio(0.05)), // optional
//	)
//	defer sdk.Shutdown(ctx)
//	otel.SetTracerProvider(sdk.TracerProvider())
//
// The tracer provider is built here: every otlp_http and otlp_grpc span
// exporter of the file becomes a tracekeeper exporter, under the batch (or
// simple) processor the file puts it in, with the file's settings
// (endpoint, headers, compression, timeout, encoding, TLS files, the
// batch sizes and delays). Any other exporter is a configuration error
// that names it, and so is a processor or an exporter entry that names
// more than one kind, as in otelconf. The resource is the file's (attributes, attributes_list,
// schema_url) over the SDK's default one; span limits apply.
//
// Endpoints are read as otelconf reads them. An otlp_http endpoint is an
// http or https URL; one without a path, such as http://collector:4318,
// sends to /v1/traces. An otlp_grpc endpoint is host:port, over TLS unless
// tls.insecure is true, an http or https URL, whose scheme chooses
// plaintext or TLS, or a gRPC target such as dns:///collector:4317, over
// TLS unless tls.insecure is true. An endpoint or a header the exporter
// would refuse is
// an error of NewSDK, not spans dropped later.
//
// otelconf alone always installs the file's sampler. Here the file's
// sampler is used as it is, unless WithErrorKeeping is given: then the
// error-keeping sampler is installed, as sampler and span processor, with
// the file's sampler as its head (what it keeps at once), and every trace
// with an error is kept besides. WithCardinalityGuard puts the guard in
// front of everything.
//
// With disabled: true, or without a tracer_provider, TracerProvider is a
// provider that records nothing, and Exporters is empty.
//
// Metrics, logs and propagators are built by otelconf itself, from the
// same file.
//
// It is a module of its own so that otelconf's dependencies never enter
// the library's go.mod.
package otelconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/otelconf"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tracekeeper/tracekeeper/exporter"
	"github.com/tracekeeper/tracekeeper/internal/envconfig"
	"github.com/tracekeeper/tracekeeper/processor"
	"github.com/tracekeeper/tracekeeper/sampler"
)

// Option configures NewSDK.
type Option interface {
	apply(config) config
}

type optionFunc func(config) config

func (f optionFunc) apply(c config) config { return f(c) }

type config struct {
	ctx          context.Context
	guard        []processor.Option
	withGuard    bool
	keep         []sampler.Option
	withKeep     bool
	exporterOpts []exporter.Option
}

// WithContext sets the context used while building the SDK (resource
// detection, otelconf's own providers). The default is
// context.Background().
func WithContext(ctx context.Context) Option {
	return optionFunc(func(c config) config { c.ctx = ctx; return c })
}

// WithCardinalityGuard puts processor.CardinalityGuard, configured by
// opts, in front of the trace pipeline. Do not pass
// processor.WithDownstream: the downstream is the rest of the pipeline.
func WithCardinalityGuard(opts ...processor.Option) Option {
	return optionFunc(func(c config) config {
		c.withGuard, c.guard = true, append([]processor.Option(nil), opts...)
		return c
	})
}

// WithErrorKeeping installs sampler.ErrorKeeping, configured by opts, as
// the provider's sampler and as its span processor, in front of the
// file's processors. The file's sampler, when it has one, becomes the
// head (sampler.WithHead), and a WithHead in opts wins over it; without
// one, the sampler's own head applies (WithRatio, or its default).
func WithErrorKeeping(opts ...sampler.Option) Option {
	return optionFunc(func(c config) config {
		c.withKeep, c.keep = true, append([]sampler.Option(nil), opts...)
		return c
	})
}

// WithExporterOptions adds options to every exporter built from the file,
// after the file's settings, so they win: WithLogger, WithMeterProvider,
// WithDroppedSpansWriter and the like.
func WithExporterOptions(opts ...exporter.Option) Option {
	return optionFunc(func(c config) config {
		c.exporterOpts = append(c.exporterOpts, opts...)
		return c
	})
}

// SDK holds the providers built from a configuration.
type SDK struct {
	conf      otelconf.SDK
	tp        *sdktrace.TracerProvider
	exporters []*exporter.Exporter
	keeper    *sampler.ErrorKeeper
	guard     *processor.Guard
}

// TracerProvider returns the tracer provider. It is never nil: when the
// file has no tracer_provider or disables the SDK, it is a provider that
// samples and records nothing (otelconf's would be a no-op one), so that
// installing it is always safe.
func (s *SDK) TracerProvider() *sdktrace.TracerProvider { return s.tp }

// MeterProvider returns otelconf's meter provider.
func (s *SDK) MeterProvider() metric.MeterProvider { return s.conf.MeterProvider() }

// LoggerProvider returns otelconf's logger provider.
func (s *SDK) LoggerProvider() log.LoggerProvider { return s.conf.LoggerProvider() }

// Propagator returns otelconf's propagator.
func (s *SDK) Propagator() propagation.TextMapPropagator { return s.conf.Propagator() }

// Exporters returns the exporters built from the file's span exporters,
// in the file's order, for their Stats and ForceFlush.
func (s *SDK) Exporters() []*exporter.Exporter { return s.exporters }

// Keeper returns the error-keeping sampler; nil without WithErrorKeeping.
func (s *SDK) Keeper() *sampler.ErrorKeeper { return s.keeper }

// Guard returns the cardinality guard; nil without WithCardinalityGuard.
func (s *SDK) Guard() *processor.Guard { return s.guard }

// Shutdown shuts the tracer provider down (deciding what the sampler
// holds, flushing the batchers, sending what the exporters have queued),
// then otelconf's providers, within ctx.
func (s *SDK) Shutdown(ctx context.Context) error {
	var err error
	if s.tp != nil {
		err = s.tp.Shutdown(ctx)
	}
	return errors.Join(err, s.conf.Shutdown(ctx))
}

// NewSDK builds the SDK that cfg describes, with tracekeeper's exporter in
// place of otlp_http and otlp_grpc span exporters. On error, nothing is
// left running.
func NewSDK(cfg *otelconf.OpenTelemetryConfiguration, opts ...Option) (*SDK, error) {
	c := config{ctx: context.Background()}
	for _, o := range opts {
		if o != nil {
			c = o.apply(c)
		}
	}
	if cfg == nil {
		return nil, errors.New("otelconf: nil configuration")
	}
	// otelconf builds everything but the tracer provider.
	rest := *cfg
	rest.TracerProvider = nil
	conf, err := otelconf.NewSDK(otelconf.WithContext(c.ctx), otelconf.WithOpenTelemetryConfiguration(rest))
	if err != nil {
		return nil, err
	}
	sdk := &SDK{conf: conf}
	if (cfg.Disabled != nil && *cfg.Disabled) || cfg.TracerProvider == nil {
		// No processor, and no span recorded: Shutdown has nothing to
		// wait for.
		sdk.tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
		return sdk, nil
	}
	if err := sdk.buildTracing(c, cfg); err != nil {
		_ = sdk.Shutdown(c.ctx)
		return nil, err
	}
	return sdk, nil
}

func (s *SDK) buildTracing(c config, cfg *otelconf.OpenTelemetryConfiguration) error {
	tpc := cfg.TracerProvider
	res, err := newResource(c.ctx, cfg.Resource)
	if err != nil {
		return err
	}
	head, err := newSampler(tpc.Sampler)
	if err != nil {
		return err
	}
	var procs []sdktrace.SpanProcessor
	var errs []error
	for i, p := range tpc.Processors {
		sp, exp, err := c.newProcessor(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("otelconf: tracer_provider.processors[%d]: %w", i, err))
			continue
		}
		procs = append(procs, sp)
		s.exporters = append(s.exporters, exp)
	}
	if err := errors.Join(errs...); err != nil {
		for _, p := range procs {
			_ = p.Shutdown(c.ctx)
		}
		return err
	}

	var next sdktrace.SpanProcessor = fanOut(procs)
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if tpc.Limits != nil {
		limits := sdktrace.NewSpanLimits()
		if v := tpc.Limits.AttributeCountLimit; v != nil {
			limits.AttributeCountLimit = *v
		}
		if v := tpc.Limits.AttributeValueLengthLimit; v != nil {
			limits.AttributeValueLengthLimit = *v
		}
		if v := tpc.Limits.EventCountLimit; v != nil {
			limits.EventCountLimit = *v
		}
		if v := tpc.Limits.LinkCountLimit; v != nil {
			limits.LinkCountLimit = *v
		}
		if v := tpc.Limits.EventAttributeCountLimit; v != nil {
			limits.AttributePerEventCountLimit = *v
		}
		if v := tpc.Limits.LinkAttributeCountLimit; v != nil {
			limits.AttributePerLinkCountLimit = *v
		}
		tpOpts = append(tpOpts, sdktrace.WithRawSpanLimits(limits))
	}
	if c.withKeep {
		var keepOpts []sampler.Option
		if tpc.Sampler != nil {
			keepOpts = append(keepOpts, sampler.WithHead(head))
		}
		keepOpts = append(keepOpts, c.keep...)
		s.keeper = sampler.ErrorKeeping(next, keepOpts...)
		next = s.keeper
		tpOpts = append(tpOpts, sdktrace.WithSampler(s.keeper))
	} else {
		tpOpts = append(tpOpts, sdktrace.WithSampler(head))
	}
	if c.withGuard {
		s.guard = processor.CardinalityGuard(append(c.guard, processor.WithDownstream(next))...)
		next = s.guard
	}
	s.tp = sdktrace.NewTracerProvider(append(tpOpts, sdktrace.WithSpanProcessor(next))...)
	return nil
}

// newProcessor maps a batch or simple processor whose exporter is
// otlp_http or otlp_grpc.
func (c config) newProcessor(p otelconf.SpanProcessor) (sdktrace.SpanProcessor, *exporter.Exporter, error) {
	switch {
	case p.Batch != nil && p.Simple != nil:
		return nil, nil, errors.New("must not specify multiple span processor types (batch and simple)")
	case p.Batch != nil:
		exp, err := c.newExporter(p.Batch.Exporter)
		if err != nil {
			return nil, nil, fmt.Errorf("batch: %w", err)
		}
		var opts []sdktrace.BatchSpanProcessorOption
		b := p.Batch
		if v := b.ScheduleDelay; v != nil {
			opts = append(opts, sdktrace.WithBatchTimeout(time.Duration(*v)*time.Millisecond))
		}
		if v := b.ExportTimeout; v != nil {
			opts = append(opts, sdktrace.WithExportTimeout(time.Duration(*v)*time.Millisecond))
		}
		if v := b.MaxQueueSize; v != nil {
			opts = append(opts, sdktrace.WithMaxQueueSize(*v))
		}
		if v := b.MaxExportBatchSize; v != nil {
			opts = append(opts, sdktrace.WithMaxExportBatchSize(*v))
		}
		return sdktrace.NewBatchSpanProcessor(exp, opts...), exp, nil
	case p.Simple != nil:
		exp, err := c.newExporter(p.Simple.Exporter)
		if err != nil {
			return nil, nil, fmt.Errorf("simple: %w", err)
		}
		return sdktrace.NewSimpleSpanProcessor(exp), exp, nil
	}
	return nil, nil, errors.New("only batch and simple processors are supported")
}

// newExporter maps otlp_http and otlp_grpc onto exporter.New. The file's
// settings come after the environment's (which exporter.New reads), so
// they win, and WithExporterOptions after both.
func (c config) newExporter(e otelconf.SpanExporter) (*exporter.Exporter, error) {
	var types []string
	for _, t := range []struct {
		name string
		set  bool
	}{{"console", e.Console != nil}, {"otlp_grpc", e.OTLPGrpc != nil}, {"otlp_http", e.OTLPHttp != nil}} {
		if t.set {
			types = append(types, t.name)
		}
	}
	if len(types) > 1 {
		return nil, fmt.Errorf("must not specify multiple exporters (%s)", strings.Join(types, ", "))
	}
	var opts []exporter.Option
	switch {
	case e.OTLPHttp != nil:
		h := e.OTLPHttp
		opts = append(opts, exporter.WithProtocol(exporter.ProtocolHTTPProtobuf))
		if h.Encoding != nil && *h.Encoding == otelconf.OTLPHttpEncodingJson {
			opts = append(opts, exporter.WithEncoding(exporter.EncodingJSON))
		}
		if v := h.Endpoint; v != nil && *v != "" {
			opts = append(opts, httpEndpoint(*v)...)
		}
		more, err := common(h.Compression, h.Timeout, h.Headers, h.HeadersList)
		if err != nil {
			return nil, err
		}
		opts = append(opts, more...)
		if t := h.Tls; t != nil {
			tc, err := tlsConfig(t.CaFile, t.CertFile, t.KeyFile)
			if err != nil {
				return nil, err
			}
			opts = append(opts, exporter.WithTLSClientConfig(tc))
		}
	case e.OTLPGrpc != nil:
		g := e.OTLPGrpc
		opts = append(opts, exporter.WithProtocol(exporter.ProtocolGRPC))
		insecure := g.Tls != nil && g.Tls.Insecure != nil && *g.Tls.Insecure
		if v := g.Endpoint; v != nil && *v != "" {
			opts = append(opts, grpcEndpoint(*v, insecure)...)
		} else if insecure {
			opts = append(opts, exporter.WithInsecure())
		}
		more, err := common(g.Compression, g.Timeout, g.Headers, g.HeadersList)
		if err != nil {
			return nil, err
		}
		opts = append(opts, more...)
		if t := g.Tls; t != nil {
			tc, err := tlsConfig(t.CaFile, t.CertFile, t.KeyFile)
			if err != nil {
				return nil, err
			}
			opts = append(opts, exporter.WithTLSClientConfig(tc))
		}
	default:
		return nil, errors.New("only otlp_http and otlp_grpc exporters are mapped onto tracekeeper (use otelconf.NewSDK for others)")
	}
	exp := exporter.New(append(opts, c.exporterOpts...)...)
	if err := exp.ConfigError(); err != nil {
		// Refused at once rather than spans dropped later; the exporter
		// started nothing to send with, and stops at once.
		_ = exp.Shutdown(context.Background())
		return nil, err
	}
	return exp, nil
}

// httpEndpoint maps an otlp_http endpoint, an http or https URL, as
// otelconf does: a URL without a path sends to the default path,
// /v1/traces, where the exporter would take it as the root. The exporter
// checks the URL.
func httpEndpoint(raw string) []exporter.Option {
	opts := []exporter.Option{exporter.WithEndpointURL(raw)}
	if u, err := url.Parse(raw); err == nil && u.Path == "" {
		opts = append(opts, exporter.WithURLPath("")) // the default
	}
	return opts
}

// grpcEndpoint maps an otlp_grpc endpoint, as otelconf does: an http or
// https URL, whose scheme chooses plaintext or TLS, or host:port (or a
// host alone, port 443) or a gRPC target of another scheme, over TLS
// unless the file sets tls.insecure. The exporter checks the endpoint.
func grpcEndpoint(raw string, insecure bool) []exporter.Option {
	if scheme, _, ok := strings.Cut(raw, "://"); ok {
		if s := strings.ToLower(scheme); s == "http" || s == "https" {
			return []exporter.Option{exporter.WithEndpointURL(raw)}
		}
		// A gRPC target (dns:///collector:4317, unix:///run/otlp.sock),
		// which otelconf hands to gRPC as written: the exporter takes it
		// so, and says if gRPC cannot resolve its scheme.
	}
	opts := []exporter.Option{exporter.WithEndpoint(raw)}
	if insecure {
		opts = append(opts, exporter.WithInsecure())
	}
	return opts
}

// common maps the settings both OTLP exporters share.
func common(compression *string, timeoutMs *int, headers []otelconf.NameStringValuePair, list *string) ([]exporter.Option, error) {
	var opts []exporter.Option
	if compression != nil {
		switch *compression {
		case "gzip":
			opts = append(opts, exporter.WithCompression(exporter.GzipCompression))
		case "none", "":
			opts = append(opts, exporter.WithCompression(exporter.NoCompression))
		default:
			return nil, fmt.Errorf("compression %q: want gzip or none", *compression)
		}
	}
	if timeoutMs != nil && *timeoutMs > 0 {
		// 0 means "no limit" in the file; the exporter keeps its 10s
		// default instead, since one attempt without a limit could hold a
		// request, and its memory, forever.
		opts = append(opts, exporter.WithTimeout(time.Duration(*timeoutMs)*time.Millisecond))
	}
	h := map[string]string{}
	if list != nil {
		// headers_list is "k=v,k2=v2" with URL-encoded values, as
		// OTEL_EXPORTER_OTLP_HEADERS; headers win over it.
		var err error
		if h, err = envconfig.ParseHeaders(*list); err != nil {
			return nil, fmt.Errorf("headers_list: %w", err)
		}
	}
	for _, p := range headers {
		if p.Value != nil {
			h[p.Name] = *p.Value
		}
	}
	if len(h) > 0 { // the exporter checks names and values
		opts = append(opts, exporter.WithHeaders(h))
	}
	return opts, nil
}

func tlsConfig(caFile, certFile, keyFile *string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != nil && *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s holds no PEM certificate", *caFile)
		}
	}
	hasCert, hasKey := certFile != nil && *certFile != "", keyFile != nil && *keyFile != ""
	switch {
	case hasCert && hasKey:
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file, tls.key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case hasCert || hasKey:
		return nil, errors.New("tls: cert_file and key_file go together")
	}
	return tc, nil
}

// newSampler builds the file's sampler; ParentBased(AlwaysOn) when it has
// none, as the specification says.
func newSampler(s *otelconf.Sampler) (sdktrace.Sampler, error) {
	switch {
	case s == nil:
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case s.ParentBased != nil:
		p := s.ParentBased
		root, err := newSampler(p.Root)
		if p.Root == nil {
			root, err = sdktrace.AlwaysSample(), nil
		}
		if err != nil {
			return nil, err
		}
		var opts []sdktrace.ParentBasedSamplerOption
		for _, v := range []struct {
			s   *otelconf.Sampler
			opt func(sdktrace.Sampler) sdktrace.ParentBasedSamplerOption
		}{
			{p.RemoteParentSampled, sdktrace.WithRemoteParentSampled},
			{p.RemoteParentNotSampled, sdktrace.WithRemoteParentNotSampled},
			{p.LocalParentSampled, sdktrace.WithLocalParentSampled},
			{p.LocalParentNotSampled, sdktrace.WithLocalParentNotSampled},
		} {
			if v.s == nil {
				continue
			}
			child, err := newSampler(v.s)
			if err != nil {
				return nil, err
			}
			opts = append(opts, v.opt(child))
		}
		return sdktrace.ParentBased(root, opts...), nil
	case s.AlwaysOff != nil:
		return sdktrace.NeverSample(), nil
	case s.AlwaysOn != nil:
		return sdktrace.AlwaysSample(), nil
	case s.TraceIDRatioBased != nil:
		ratio := 1.0
		if r := s.TraceIDRatioBased.Ratio; r != nil {
			ratio = *r
		}
		if math.IsNaN(ratio) {
			// sdktrace.TraceIDRatioBased(NaN) samples every trace.
			return nil, errors.New("otelconf: tracer_provider.sampler: trace_id_ratio_based.ratio is NaN (want a number from 0 to 1)")
		}
		return sdktrace.TraceIDRatioBased(ratio), nil
	}
	return nil, errors.New("otelconf: tracer_provider.sampler: unsupported sampler (want always_on, always_off, trace_id_ratio_based or parent_based)")
}

// newResource is the SDK's default resource with the file's attributes
// over it.
func newResource(ctx context.Context, r *otelconf.Resource) (*resource.Resource, error) {
	base := resource.DefaultWithContext(ctx)
	if r == nil {
		return base, nil
	}
	var attrs []attribute.KeyValue
	if r.AttributesList != nil {
		for i, pair := range strings.Split(*r.AttributesList, ",") {
			if strings.TrimSpace(pair) == "" {
				continue
			}
			k, v, ok := strings.Cut(pair, "=")
			value, err := url.PathUnescape(strings.TrimSpace(v))
			if !ok || strings.TrimSpace(k) == "" || err != nil {
				return nil, fmt.Errorf("otelconf: resource.attributes_list: entry %d is not name=url-encoded-value", i+1)
			}
			attrs = append(attrs, attribute.String(strings.TrimSpace(k), value))
		}
	}
	for _, a := range r.Attributes {
		kv, err := typedAttribute(a)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, kv) // after the list: attributes win
	}
	schema := ""
	if r.SchemaUrl != nil {
		schema = *r.SchemaUrl
	}
	// The file's schema URL is the resource's: the default resource's
	// attributes are taken without theirs (a merge would refuse two
	// schema URLs), and the file's attributes, last, win.
	return resource.NewWithAttributes(schema, append(base.Attributes(), attrs...)...), nil
}

// typedAttribute converts a resource attribute by its declared type, or by
// its value's when it declares none.
func typedAttribute(a otelconf.AttributeNameValue) (attribute.KeyValue, error) {
	bad := func() (attribute.KeyValue, error) {
		return attribute.KeyValue{}, fmt.Errorf("otelconf: resource attribute %q: value %v does not match its type", a.Name, a.Value)
	}
	typ := ""
	if a.Type != nil {
		typ = string(*a.Type)
	}
	switch v := a.Value.(type) {
	case string:
		if typ == "" || typ == "string" {
			return attribute.String(a.Name, v), nil
		}
	case bool:
		if typ == "" || typ == "bool" {
			return attribute.Bool(a.Name, v), nil
		}
	case int:
		if typ == "" || typ == "int" {
			return attribute.Int(a.Name, v), nil
		}
		if typ == "double" {
			return attribute.Float64(a.Name, float64(v)), nil
		}
	case int64:
		if typ == "" || typ == "int" {
			return attribute.Int64(a.Name, v), nil
		}
	case uint64:
		if typ == "" || typ == "int" {
			return attribute.Int64(a.Name, int64(v)), nil
		}
	case float64:
		switch {
		case typ == "" || typ == "double":
			return attribute.Float64(a.Name, v), nil
		case typ == "int" && v == float64(int64(v)):
			return attribute.Int64(a.Name, int64(v)), nil
		}
	case []any:
		return arrayAttribute(a.Name, typ, v)
	}
	return bad()
}

func arrayAttribute(name, typ string, vs []any) (attribute.KeyValue, error) {
	bad := fmt.Errorf("otelconf: resource attribute %q: array %v does not match its type", name, vs)
	switch typ {
	case "string_array", "":
		out := make([]string, 0, len(vs))
		for _, v := range vs {
			s, ok := v.(string)
			if !ok {
				return attribute.KeyValue{}, bad
			}
			out = append(out, s)
		}
		return attribute.StringSlice(name, out), nil
	case "bool_array":
		out := make([]bool, 0, len(vs))
		for _, v := range vs {
			b, ok := v.(bool)
			if !ok {
				return attribute.KeyValue{}, bad
			}
			out = append(out, b)
		}
		return attribute.BoolSlice(name, out), nil
	case "int_array":
		out := make([]int64, 0, len(vs))
		for _, v := range vs {
			switch n := v.(type) {
			case int:
				out = append(out, int64(n))
			case int64:
				out = append(out, n)
			case uint64:
				out = append(out, int64(n))
			case float64:
				out = append(out, int64(n))
			default:
				return attribute.KeyValue{}, bad
			}
		}
		return attribute.Int64Slice(name, out), nil
	case "double_array":
		out := make([]float64, 0, len(vs))
		for _, v := range vs {
			switch n := v.(type) {
			case int:
				out = append(out, float64(n))
			case float64:
				out = append(out, n)
			default:
				return attribute.KeyValue{}, bad
			}
		}
		return attribute.Float64Slice(name, out), nil
	}
	return attribute.KeyValue{}, bad
}

// fanOut sends every span to each processor; one processor is itself.
func fanOut(ps []sdktrace.SpanProcessor) sdktrace.SpanProcessor {
	if len(ps) == 1 {
		return ps[0]
	}
	return multi(ps)
}

type multi []sdktrace.SpanProcessor

var _ sdktrace.SpanProcessor = multi(nil)

func (m multi) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) {
	for _, p := range m {
		p.OnStart(ctx, s)
	}
}

func (m multi) OnEnd(s sdktrace.ReadOnlySpan) {
	for _, p := range m {
		p.OnEnd(s)
	}
}

func (m multi) Shutdown(ctx context.Context) error {
	var errs []error
	for _, p := range m {
		errs = append(errs, p.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

func (m multi) ForceFlush(ctx context.Context) error {
	var errs []error
	for _, p := range m {
		errs = append(errs, p.ForceFlush(ctx))
	}
	return errors.Join(errs...)
}
