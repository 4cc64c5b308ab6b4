package exporter

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/net/http/httpguts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/resolver"

	"github.com/tracekeeper/tracekeeper/internal/envconfig"
)

const (
	defaultHost            = "localhost"
	defaultHTTPPort        = "4318"
	defaultGRPCPort        = "4317"
	defaultURLPath         = "/v1/traces"
	defaultTimeout         = 10 * time.Second
	defaultMaxConcurrency  = 1024
	initialConcurrency     = 16
	defaultQueueSpans      = 65536
	defaultMemoryBudget    = 32 << 20
	defaultMaxRequestBytes = 1 << 20
	defaultLogInterval     = 10 * time.Second
	defaultSpoolMaxBytes   = 1 << 30
	defaultSpoolSync       = time.Second

	envSpoolDir      = "TRACEKEEPER_SPOOL_DIR"
	envSpoolMaxBytes = "TRACEKEEPER_SPOOL_MAX_BYTES"
)

// defaultRetry is the retry policy used unless WithRetry says otherwise.
var defaultRetry = RetryConfig{
	Enabled:         true,
	InitialInterval: time.Second,
	MaxInterval:     30 * time.Second,
	MaxElapsedTime:  time.Minute,
}

type config struct {
	protocol        Protocol
	endpoint        string // empty: localhost and the protocol's port
	urlPath         string
	insecure        bool
	headers         map[string]string
	compression     Compression
	tlsConfig       *tls.Config
	timeout         time.Duration
	retry           RetryConfig
	workers         int // fixed concurrency; zero: adaptive up to maxConcurrency
	maxConcurrency  int
	queueSpans      int
	memoryBudget    int
	maxRequestBytes int
	blockOnFull     time.Duration
	spoolDir        string
	spoolMaxBytes   int64
	spoolOrder      SpoolOrder
	spoolSync       time.Duration
	logger          *zap.Logger
	logInterval     time.Duration
	dropWriter      io.Writer
	meterProvider   metric.MeterProvider
	clock           clockwork.Clock

	// Settings for one protocol only (options_stock.go), and the names of
	// the options given for each, to warn about those the chosen protocol
	// ignores.
	maxResponseBytes   int64
	proxy              HTTPTransportProxyFunc
	httpClient         *http.Client
	reconnectionPeriod time.Duration
	grpcCreds          credentials.TransportCredentials
	serviceConfig      string
	dialOptions        []grpc.DialOption
	grpcConn           *grpc.ClientConn
	httpOnly           []string
	grpcOnly           []string

	// errs are problems found while applying options: they make the
	// configuration invalid. envErrs are malformed environment variables:
	// they are reported and the variable ignored.
	errs    []error
	envErrs error
}

func newConfig(opts []Option) config {
	c := config{
		protocol:        ProtocolHTTPProtobuf,
		urlPath:         defaultURLPath,
		timeout:         defaultTimeout,
		retry:           defaultRetry,
		maxConcurrency:  defaultMaxConcurrency,
		queueSpans:      defaultQueueSpans,
		memoryBudget:    defaultMemoryBudget,
		maxRequestBytes: defaultMaxRequestBytes,
		logInterval:     defaultLogInterval,
		spoolMaxBytes:   defaultSpoolMaxBytes,
		spoolSync:       defaultSpoolSync,
	}
	s, err := envconfig.Read(nil)
	c = c.applyEnv(s, err, opts)
	c = c.applySpoolEnv(os.Getenv)
	for _, o := range opts {
		if o != nil {
			c = o.apply(c)
		}
	}
	if c.logger == nil {
		c.logger = defaultLogger()
	}
	if c.meterProvider == nil {
		c.meterProvider = otel.GetMeterProvider()
	}
	if c.clock == nil {
		c.clock = clockwork.NewRealClock()
	}
	return c
}

// defaultLogger writes warnings and errors to standard error.
func defaultLogger() *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), zapcore.WarnLevel)
	return zap.New(core)
}

// validate checks the settings and returns every problem found, joined.
func (c config) validate() error {
	errs := append([]error(nil), c.errs...)
	if c.workers < 0 {
		errs = append(errs, fmt.Errorf("exporter: workers must be positive, got %d", c.workers))
	}
	if c.maxConcurrency <= 0 {
		errs = append(errs, fmt.Errorf("exporter: max concurrency must be positive, got %d", c.maxConcurrency))
	}
	if c.queueSpans <= 0 {
		errs = append(errs, fmt.Errorf("exporter: queue size must be positive, got %d", c.queueSpans))
	}
	if c.memoryBudget <= 0 {
		errs = append(errs, fmt.Errorf("exporter: memory budget must be positive, got %d", c.memoryBudget))
	}
	if c.maxRequestBytes <= 0 {
		errs = append(errs, fmt.Errorf("exporter: max request size must be positive, got %d", c.maxRequestBytes))
	} else if c.memoryBudget > 0 && c.maxRequestBytes > c.memoryBudget {
		errs = append(errs, fmt.Errorf("exporter: max request size %d exceeds the memory budget %d", c.maxRequestBytes, c.memoryBudget))
	}
	if c.timeout < 0 {
		errs = append(errs, fmt.Errorf("exporter: timeout must not be negative, got %v", c.timeout))
	}
	if c.blockOnFull < 0 {
		errs = append(errs, fmt.Errorf("exporter: block-on-full wait must not be negative, got %v", c.blockOnFull))
	}
	if c.spoolDir != "" && c.memoryBudget > 0 && c.maxRequestBytes > 0 && c.memoryBudget < 2*c.maxRequestBytes {
		errs = append(errs, fmt.Errorf("exporter: with a spool, the memory budget %d must hold at least two requests of the maximum size %d", c.memoryBudget, c.maxRequestBytes))
	}
	if c.spoolDir != "" && c.spoolMaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("exporter: spool size must be positive, got %d", c.spoolMaxBytes))
	}
	if c.spoolSync < 0 {
		errs = append(errs, fmt.Errorf("exporter: spool sync interval must not be negative, got %v", c.spoolSync))
	}
	if c.spoolOrder != OldestFirst && c.spoolOrder != FreshFirst {
		errs = append(errs, fmt.Errorf("exporter: unknown spool order %d", c.spoolOrder))
	}
	if c.logInterval <= 0 {
		errs = append(errs, fmt.Errorf("exporter: log interval must be positive, got %v", c.logInterval))
	}
	if r := c.retry; r.Enabled && (r.InitialInterval <= 0 || r.MaxInterval < 0 || r.MaxElapsedTime < 0) {
		errs = append(errs, fmt.Errorf("exporter: retry intervals and elapsed time must not be negative, got %+v", r))
	}
	if c.protocol != ProtocolHTTPProtobuf && c.protocol != ProtocolHTTPJSON && c.protocol != ProtocolGRPC {
		errs = append(errs, fmt.Errorf("exporter: unsupported protocol %q (want %q, %q or %q)", c.protocol, ProtocolHTTPProtobuf, ProtocolHTTPJSON, ProtocolGRPC))
	}
	if c.compression != NoCompression && c.compression != GzipCompression {
		errs = append(errs, fmt.Errorf("exporter: unknown compression %v", c.compression))
	}
	for _, k := range slices.Sorted(maps.Keys(c.headers)) {
		if !httpguts.ValidHeaderFieldName(k) {
			errs = append(errs, fmt.Errorf("exporter: invalid header name %q (a header name is a token of ASCII letters, digits and !#$%%&'*+-.^_`|~)", k))
		}
		if !httpguts.ValidHeaderFieldValue(c.headers[k]) {
			// The value is a credential: never quote it.
			errs = append(errs, fmt.Errorf("exporter: the value of header %q holds control characters", k))
		}
	}
	if _, _, err := c.resolveEndpoint(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// resolveEndpoint resolves the endpoint settings into a gRPC target name
// (see grpcTarget), or else into the request URL (targetURL).
func (c config) resolveEndpoint() (target string, u *url.URL, err error) {
	if target, ok, err := c.grpcTarget(); ok || err != nil {
		return target, nil, err
	}
	u, err = c.targetURL()
	return "", u, err
}

// grpcTarget returns the endpoint when, with ProtocolGRPC, it is a gRPC
// target name rather than host:port: a scheme gRPC has a resolver for,
// then ':' ("dns:///collector:4317", "passthrough:///10.0.0.1:4317",
// "unix:///run/otlp.sock", "unix-abstract:name"). It is given to gRPC as
// written, as the stock exporter does. err says what is wrong with an
// endpoint written as a target ("scheme://…") that gRPC cannot resolve.
func (c config) grpcTarget() (target string, ok bool, err error) {
	if c.protocol != ProtocolGRPC {
		return "", false, nil
	}
	scheme, known, written, err := targetScheme(c.endpoint)
	shown := envconfig.HideUserinfo(c.endpoint) // errors never quote credentials
	switch {
	case !known && !written:
		return "", false, nil
	case hasSpaceOrControl(c.endpoint):
		return "", false, fmt.Errorf("exporter: endpoint %q holds spaces or control characters", shown)
	case err != nil:
		return "", false, fmt.Errorf("exporter: endpoint %q is not a valid gRPC target: %w", shown, err)
	case !known && len(c.dialOptions) > 0:
		// A dial option may bring the scheme's resolver
		// (grpc.WithResolvers): the connection says (see
		// transport.NewGRPC).
	case !known:
		return "", false, fmt.Errorf("exporter: endpoint %q: gRPC has no resolver for the scheme %q (want host:port, or a gRPC target such as dns:///host:port or unix:///path)", shown, scheme)
	}
	return c.endpoint, true, nil
}

// targetScheme reads v as a gRPC target, as grpc.NewClient does: known
// says whether gRPC has a resolver for its scheme, written whether it is
// written as a target ("scheme://…", which host:port never is).
func targetScheme(v string) (scheme string, known, written bool, err error) {
	written = strings.Contains(v, "://")
	u, err := url.Parse(v)
	if err != nil {
		if !written {
			return "", false, false, nil // host:port such as 127.0.0.1:4317
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the URL, credentials included
		}
		return "", false, true, err
	}
	return u.Scheme, u.Scheme != "" && knownGRPCScheme(u.Scheme), written, nil
}

// knownGRPCScheme says whether gRPC has a resolver for scheme: its own
// (dns, passthrough, unix, unix-abstract) or one registered with
// resolver.Register.
func knownGRPCScheme(scheme string) bool { return resolver.Get(scheme) != nil }

func hasSpaceOrControl(v string) bool {
	return strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0
}

// targetURL resolves the endpoint settings, host:port, into the request
// URL; for gRPC, the URL whose host is the target.
func (c config) targetURL() (u *url.URL, err error) {
	hostport := c.endpoint
	if hostport == "" {
		hostport = defaultHost
	}
	shown := envconfig.HideUserinfo(hostport) // errors never quote credentials
	if hasSpaceOrControl(hostport) {
		return nil, fmt.Errorf("exporter: endpoint %q holds spaces or control characters", shown)
	}
	// A malformed host:port that reads as a gRPC target ("unix:/path",
	// "dns:host:4317") is one, given without the grpc protocol.
	if _, known, _, _ := targetScheme(hostport); known {
		defer func() {
			if err != nil {
				u, err = nil, fmt.Errorf("exporter: endpoint %q is a gRPC target, which needs the grpc protocol (WithProtocol(ProtocolGRPC)); over OTLP/HTTP the endpoint is host:port (use WithEndpointURL for a URL)", shown)
			}
		}()
	}
	if strings.ContainsAny(hostport, "/?#@") {
		return nil, fmt.Errorf("exporter: endpoint %q must be host:port without scheme or path (use WithEndpointURL for a URL)", shown)
	}
	if c.endpoint == "" {
		hostport = net.JoinHostPort(defaultHost, c.defaultPort())
	}
	if _, port, err := net.SplitHostPort(hostport); err != nil {
		// A host without a port keeps it, as in a URL: HTTP uses the
		// scheme's port and gRPC its own default, 443, as the stock
		// exporters do. Anything else is malformed.
		var ae *net.AddrError
		if !errors.As(err, &ae) || ae.Err != "missing port in address" {
			return nil, fmt.Errorf("exporter: endpoint %q: %w", shown, err)
		}
		if h := strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"); h == "" || strings.ContainsAny(h, "[]") ||
			(h != hostport && net.ParseIP(h) == nil) {
			return nil, fmt.Errorf("exporter: endpoint %q: invalid host", shown)
		}
	} else if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return nil, fmt.Errorf("exporter: endpoint %q: invalid port", shown)
	}
	scheme := "https"
	if c.insecure {
		scheme = "http"
	}
	return &url.URL{Scheme: scheme, Host: hostport, Path: requestPath(c.urlPath)}, nil
}

// requestPath returns the request path for the configured one, as the
// stock exporter cleans it: spaces trimmed, the default for an empty path
// or ".", and a leading slash added when missing.
func requestPath(p string) string {
	p = strings.TrimSpace(p)
	switch {
	case p == "" || p == ".":
		return defaultURLPath
	case !strings.HasPrefix(p, "/"):
		return "/" + p
	}
	return p
}

// port returns the port requests go to: the endpoint's, or the one a host
// without a port implies.
func (c config) port(u *url.URL) (int, bool) {
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		return n, err == nil
	}
	if c.protocol == ProtocolGRPC || !c.insecure {
		return 443, true
	}
	return 80, true
}

// ignoredOptions names the options given that the chosen protocol
// ignores, sorted and without repeats; nil when there are none.
func (c config) ignoredOptions() []string {
	names := c.httpOnly
	if c.protocol != ProtocolGRPC {
		names = c.grpcOnly
	}
	if len(names) == 0 {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(names)))
}

// concurrency returns the limiter's bounds: fixed with WithWorkers,
// adaptive otherwise.
func (c config) concurrency() (lo, initial, hi int) {
	if c.workers > 0 {
		return c.workers, c.workers, c.workers
	}
	return 1, min(initialConcurrency, c.maxConcurrency), c.maxConcurrency
}

func (c config) defaultPort() string {
	if c.protocol == ProtocolGRPC {
		return defaultGRPCPort
	}
	return defaultHTTPPort
}

// applySpoolEnv reads the project's own spool variables; a malformed size
// is reported and ignored.
func (c config) applySpoolEnv(getenv func(string) string) config {
	if dir := getenv(envSpoolDir); dir != "" {
		c.spoolDir = dir
	}
	if v := getenv(envSpoolMaxBytes); v != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n <= 0 {
			c.envErrs = errors.Join(c.envErrs, fmt.Errorf("%s: want a positive number of bytes, got %q", envSpoolMaxBytes, v))
		} else {
			c.spoolMaxBytes = n
		}
	}
	return c
}

// applyEnv layers the OTEL_EXPORTER_OTLP_* settings over the defaults.
// The endpoint variables read differently for gRPC, where a target name
// such as unix:///run/otlp.sock is an endpoint, and opts, applied next,
// may choose the protocol: they are resolved for the protocol opts leave.
func (c config) applyEnv(s envconfig.Settings, err error, opts []Option) config {
	if s.Protocol != "" {
		c.protocol = Protocol(s.Protocol)
	}
	ep, epErr := s.Endpoint(protocolAfter(c.protocol, opts) == ProtocolGRPC, knownGRPCScheme)
	c.envErrs = errors.Join(err, epErr)
	switch u := ep.URL; {
	case ep.Target != "":
		// As the stock exporter: plaintext over a unix socket, TLS
		// otherwise, unless the INSECURE variables say otherwise.
		c.endpoint = ep.Target
		c.insecure = u.Scheme == "unix"
	case u != nil:
		c.endpoint = u.Host
		c.urlPath = u.Path
		c.insecure = u.Scheme == "http"
	}
	if s.Insecure != nil {
		c.insecure = *s.Insecure
	}
	if s.Headers != nil {
		c.headers = s.Headers
	}
	switch s.Compression {
	case "gzip":
		c.compression = GzipCompression
	case "none":
		c.compression = NoCompression
	}
	if s.Timeout != nil {
		c.timeout = *s.Timeout
	}
	if s.TLS != nil {
		c.tlsConfig = s.TLS
	}
	return c
}

// protocolAfter returns the protocol in force once opts are applied over
// p: only WithProtocol and WithEncoding change it, and they look at
// nothing else.
func protocolAfter(p Protocol, opts []Option) Protocol {
	for _, o := range opts {
		if o != nil {
			p = o.apply(config{protocol: p}).protocol
		}
	}
	return p
}
