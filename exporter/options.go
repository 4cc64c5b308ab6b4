package exporter

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"time"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// Option configures an Exporter.
type Option interface {
	apply(config) config
}

type optionFunc func(config) config

func (f optionFunc) apply(c config) config { return f(c) }

// Compression is the compression applied to request bodies.
type Compression int

const (
	// NoCompression sends bodies as they are.
	NoCompression Compression = iota
	// GzipCompression compresses bodies with gzip.
	GzipCompression
)

// Protocol is the OTLP transport, spelled as OTEL_EXPORTER_OTLP_PROTOCOL
// spells it.
type Protocol string

const (
	// ProtocolHTTPProtobuf is OTLP/HTTP with protobuf bodies, the default.
	ProtocolHTTPProtobuf Protocol = "http/protobuf"
	// ProtocolGRPC is OTLP/gRPC.
	ProtocolGRPC Protocol = "grpc"
)

// WithProtocol chooses between OTLP/HTTP (ProtocolHTTPProtobuf, the default,
// port 4318; ProtocolHTTPJSON for OTLP/JSON bodies) and OTLP/gRPC
// (ProtocolGRPC, port 4317). Both share the queue, workers, retries,
// accounting and logging; with gRPC, headers are sent as metadata, and
// the options for OTLP/HTTP only (WithURLPath, WithEncoding, WithProxy,
// WithHTTPClient, WithMaxResponseSize) are ignored with a warning; the
// reverse holds for the options for OTLP/gRPC only.
//
// A program moving from otlptracegrpc gives WithProtocol(ProtocolGRPC)
// first to New, in place of the context otlptracegrpc.New takes.
//
// Environment: OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL; this option wins. Of
// WithProtocol and WithEncoding, the last one given wins.
func WithProtocol(p Protocol) Option {
	return optionFunc(func(c config) config {
		c.protocol = p
		return c
	})
}

// RetryConfig is the policy for retrying a failed request. The zero value
// disables retries.
type RetryConfig struct {
	// Enabled turns retries on.
	Enabled bool
	// InitialInterval is the delay before the first retry; zero means
	// the default, 1s, and a negative one is a configuration error.
	InitialInterval time.Duration
	// MaxInterval caps the delay between two attempts; zero means no cap.
	MaxInterval time.Duration
	// MaxElapsedTime is the total time spent on one request, retries
	// included, after which its spans are dropped with reason
	// retries_exhausted: no attempt starts after it, even when the
	// request waited that long for a slot of the concurrency limit, and
	// with WithTimeout(0) an attempt ends with it; one started before it
	// gets its whole WithTimeout. Zero means no limit: a request is
	// retried until it succeeds or Shutdown's deadline passes.
	//
	// Once a request has spent its whole budget during Shutdown, the
	// backend has been down that long: what is still queued is not tried
	// and ends as retries_exhausted too (on disk, with WithSpool), so a
	// Shutdown without a deadline lasts about one budget and an attempt.
	MaxElapsedTime time.Duration
}

// WithEndpoint sets the backend as "host:port", without scheme or path. A
// host without a port, as in a URL, means the scheme's port over HTTP (443,
// or 80 with WithInsecure) and gRPC's default, 443. The default endpoint is
// "localhost:4318", or "localhost:4317" with ProtocolGRPC. Connections use
// TLS unless WithInsecure is given.
//
// With ProtocolGRPC, the endpoint may also be a gRPC target name, as with
// otlptracegrpc: a scheme gRPC has a resolver for (dns, passthrough, unix,
// unix-abstract, one registered with resolver.Register, or one a
// WithDialOption brings, as grpc.WithResolvers does), then ':', as in
// "dns:///collector:4317" (client-side load balancing, with a round_robin
// WithServiceConfig), "passthrough:///10.0.0.1:4317" or
// "unix:///run/otlp.sock". It is given to grpc.NewClient as written, with
// TLS unless WithInsecure (or WithTLSCredentials) says otherwise. A value
// written as a target ("scheme://…") whose scheme gRPC has no resolver for
// is a configuration error, and so is a target with the OTLP/HTTP
// protocols.
//
// Environment: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT;
// this option wins over both. With gRPC, their value may be a target name
// too, with or without "//" (unix:///run/otlp.sock, unix:/run/otlp.sock,
// dns:collector:4317: plaintext for unix, TLS otherwise, unless
// OTEL_EXPORTER_OTLP_[TRACES_]INSECURE says otherwise); with OTLP/HTTP such
// a value, and with gRPC one whose scheme gRPC has no resolver for, is
// reported and ignored, the next variable in force. The protocol they are
// read for is the one in force after every option. Of WithEndpoint and
// WithEndpointURL, the last one given wins.
func WithEndpoint(hostport string) Option {
	return optionFunc(func(c config) config {
		c.endpoint = hostport
		return c
	})
}

// WithEndpointURL sets the backend as a full URL such as
// "http://collector:4318/v1/traces": its host is the endpoint (without a
// port, the scheme's: "https://api.example.com" is port 443), its scheme
// chooses between plaintext (http) and TLS (https), and its path is the URL
// path ("/" when it has none). An unparsable URL is a configuration error.
//
// Environment: as WithEndpoint; this option wins. Of WithEndpoint and
// WithEndpointURL, the last one given wins.
func WithEndpointURL(rawURL string) Option {
	return optionFunc(func(c config) config {
		u, err := url.Parse(rawURL)
		switch {
		case err != nil:
			// url.Parse quotes the whole URL, credentials included: keep
			// only the cause.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			c.errs = append(c.errs, fmt.Errorf("exporter: invalid endpoint URL: %w (want an http or https URL such as http://collector:4318)", err))
		case u.Scheme != "http" && u.Scheme != "https":
			c.errs = append(c.errs, fmt.Errorf("exporter: endpoint URL %q: scheme must be http or https", u.Redacted()))
		case u.Hostname() == "":
			// "http://:4318", what "http://${HOST}:4318" becomes with HOST
			// unset, would go to this machine.
			c.errs = append(c.errs, fmt.Errorf("exporter: endpoint URL %q has no host", u.Redacted()))
		default:
			c.endpoint = u.Host
			c.insecure = u.Scheme == "http"
			c.urlPath = u.Path
			if c.urlPath == "" {
				c.urlPath = "/" // a URL without a path is the root
			}
		}
		return c
	})
}

// WithURLPath sets the request path. The default is "/v1/traces", also for
// an empty path; a path without a leading slash gets one.
//
// OTLP/HTTP only; ignored with ProtocolGRPC. Environment: the path of
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or that of
// OTEL_EXPORTER_OTLP_ENDPOINT followed by /v1/traces; this option wins.
func WithURLPath(path string) Option {
	return optionFunc(func(c config) config {
		c.httpOnly = append(c.httpOnly, "WithURLPath")
		c.urlPath = path
		return c
	})
}

// WithInsecure sends requests in plaintext (http) instead of over TLS.
//
// Environment: OTEL_EXPORTER_OTLP_[TRACES_]INSECURE=true, or an http://
// endpoint URL; this option wins.
func WithInsecure() Option {
	return optionFunc(func(c config) config {
		c.insecure = true
		return c
	})
}

// WithHeaders adds headers to every request, for example an API key. Header
// values are never logged.
//
// Environment: OTEL_EXPORTER_OTLP_[TRACES_]HEADERS ("k1=v1,k2=v2", values
// URL-encoded); this option replaces them.
func WithHeaders(headers map[string]string) Option {
	h := maps.Clone(headers)
	return optionFunc(func(c config) config {
		c.headers = h
		return c
	})
}

// WithCompression sets the compression of request bodies. The default is
// NoCompression.
//
// Environment: OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION (gzip or none); this
// option wins.
func WithCompression(comp Compression) Option {
	return optionFunc(func(c config) config {
		c.compression = comp
		return c
	})
}

// WithTLSClientConfig sets the TLS configuration for https endpoints. The
// default verifies the server against the system's roots.
//
// Environment: OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE (root CAs, PEM file),
// OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_CERTIFICATE and _CLIENT_KEY (mTLS); this
// option replaces them.
func WithTLSClientConfig(cfg *tls.Config) Option {
	var cl *tls.Config
	if cfg != nil {
		cl = cfg.Clone()
	}
	return optionFunc(func(c config) config {
		c.tlsConfig = cl
		return c
	})
}

// WithTimeout bounds each attempt to send a request. The default is 10s;
// zero means no bound of its own (the retry budget, RetryConfig's
// MaxElapsedTime, then ends an attempt), and a negative one is a
// configuration error.
//
// Environment: OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT (milliseconds); this
// option wins.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(c config) config {
		c.timeout = d
		return c
	})
}

// WithRetry sets the retry policy for retryable failures (HTTP 429, 502,
// 503, 504; gRPC Unavailable, Canceled, DeadlineExceeded, Aborted,
// OutOfRange, DataLoss, and ResourceExhausted when the server sends
// RetryInfo; connection errors and timeouts). The default is enabled, 1s
// initial interval growing 1.5× per attempt to at most 30s, and 1 minute in
// all; delays are jittered ±50%. A server's Retry-After or RetryInfo delay
// is honoured. Otherwise a wait ends early when another request succeeds,
// so the queue drains as soon as the backend is back.
func WithRetry(rc RetryConfig) Option {
	return optionFunc(func(c config) config {
		if rc.InitialInterval == 0 {
			// As in stock, a config that sets only some fields works.
			rc.InitialInterval = defaultRetry.InitialInterval
		}
		c.retry = rc
		return c
	})
}

// WithWorkers fixes the number of requests in flight at n, turning off
// the adaptive concurrency (see WithMaxConcurrency). A fixed number suits a
// backend whose capacity is known; the default adapts to what the backend
// sustains. Like the adaptive ceiling, n is capped by the memory budget
// (see WithMemoryBudget).
func WithWorkers(n int) Option {
	return optionFunc(func(c config) config {
		c.workers = n
		return c
	})
}

// WithMaxConcurrency sets the ceiling of the adaptive concurrency. The
// default is 1024, and the memory budget caps it further: each request
// in flight is counted 16 KiB for its connection's buffers and HTTP
// state besides its body, and at most an eighth of the budget is set
// aside for that (256 requests at the default 32 MiB). What is set aside
// follows the current limit, 16 KiB per request it lets fly; the rest of
// the budget holds spans.
//
// The number of requests in flight starts at 16 and follows what the
// backend sustains. While a whole request's worth of spans waits for a
// slot, it triples per round trip as long as round trips stay flat and
// requests succeed, and, before the backend's first answer, grows every
// 100 ms by as many requests as wait, at most doubling. It shrinks by 10% on 429, 503, 502, 504,
// RESOURCE_EXHAUSTED, timeouts or rising round trips, and grows by one
// per round trip after that. A refusal that comes back at once, from a
// backend at its capacity, lowers it to the requests the backend holds
// (the others in flight) instead. Requests waiting to retry give their
// slot back meanwhile. Stats.ConcurrencyLimit and the
// tracekeeper.exporter.concurrency.limit metric show where it is.
func WithMaxConcurrency(n int) Option {
	return optionFunc(func(c config) config {
		c.maxConcurrency = n
		return c
	})
}

// WithQueueSize sets how many spans may wait in the queue for a sender.
// The default is 65536. When the queue is full, further spans are dropped
// with reason queue_full (see WithBlockOnFull). Keep it well above the
// BatchSpanProcessor's batch size (512 by default): each ExportSpans call
// is queued as requests of up to the maximum request size, and a request
// holding more spans than the whole queue can is dropped.
func WithQueueSize(spans int) Option {
	return optionFunc(func(c config) config {
		c.queueSpans = spans
		return c
	})
}

// WithMemoryBudget sets the memory the exporter may hold for spans:
// encoded spans waiting in the queue and requests in flight, retries
// included, with the buffers they hold counted at their capacity, 16 KiB
// per request in flight for its connection and HTTP state (see
// WithMaxConcurrency), and, with gzip over HTTP, the compressors' state
// (about 1.2 MiB each, one per core). The default is 32 MiB. When it is full, further
// spans are dropped with reason queue_full (see WithBlockOnFull).
//
// By Little's law, a budget of B bytes carries about B / L bytes per
// second to a backend L away: 32 MiB at 100 ms of round trip is 320 MiB/s
// of encoded spans, at 1 s 32 MiB/s. With gzip (WithCompression), a request
// in flight holds its compressed form only, several times smaller, so the
// same budget carries several times more spans.
func WithMemoryBudget(bytes int) Option {
	return optionFunc(func(c config) config {
		c.memoryBudget = bytes
		return c
	})
}

// SpoolOrder is the order in which the spool's backlog is sent.
type SpoolOrder int

const (
	// OldestFirst sends spans in the order they arrived: while the spool
	// has a backlog, new spans join it on disk.
	OldestFirst SpoolOrder = iota
	// FreshFirst sends new spans from memory first and backfills the
	// backlog, newest first, when memory has nothing waiting.
	FreshFirst
)

// WithSpool keeps spans on disk, in dir, when the memory budget is full
// (the backend slow, failing or down) instead of dropping them, and
// delivers them as soon as the backend accepts again. Off by default.
//
// The spool holds at most maxBytes of disk (1 GiB when zero); past that,
// new spans are dropped with reason spool_full (drop newest). At start,
// what an earlier process left in dir is delivered (Stats.Recovered). At
// Shutdown, what cannot be sent before the deadline is written to the
// spool instead of dropped; sending the spool's backlog stops there, or,
// without a deadline, at the first record of it that cannot be sent, and
// the rest stays on disk for the next start. Delivery from the spool is at
// least once: a span that was sent but not answered before a crash is sent
// again (Stats.Resent). A record refused as too large is split; when a
// part of it is delivered and the rest cannot be sent, only the rest goes
// back to disk, written before the record is marked finished, so that a
// crash in between costs duplicates (counted in Stats.Resent), never
// spans; that record may take the spool past maxBytes by one record.
// Records are checksummed; a torn or corrupt one is skipped and counted
// (Stats.SpoolCorrupt), and so is a segment file that cannot be opened,
// which is logged and left as it is. If the disk fails (full, read-only,
// gone), the spans being written are dropped with reason spool_error and
// the exporter goes on with memory only. A directory removed or replaced
// while it runs is found at the next sync and at Shutdown: the spans only
// it held are dropped with reason spool_error too, and a Shutdown that
// finds them gone returns an error counting them.
//
// With a spool, a quarter of the memory budget holds spans waiting to be
// written, so the total stays within WithMemoryBudget; ExportSpans never
// waits on the disk. Files are 0600 in a 0700 directory locked against a
// second process, which gets a configuration error and runs memory-only.
// Writes are made durable every second (see WithSpoolSync): a power loss
// can cost the spans spooled in the last second, a process crash nothing
// that was handed to the spool's writer.
//
// Environment: TRACEKEEPER_SPOOL_DIR, TRACEKEEPER_SPOOL_MAX_BYTES; this
// option wins.
func WithSpool(dir string, maxBytes int64) Option {
	return optionFunc(func(c config) config {
		c.spoolDir = dir
		if maxBytes != 0 {
			c.spoolMaxBytes = maxBytes
		}
		return c
	})
}

// WithSpoolOrder sets the order the spool's backlog is sent in. The
// default is OldestFirst.
func WithSpoolOrder(o SpoolOrder) Option {
	return optionFunc(func(c config) config {
		c.spoolOrder = o
		return c
	})
}

// WithSpoolSync sets how often the spool's writes are made durable
// (fsync). The default is one second; zero syncs after every write, which
// costs a disk flush per request.
func WithSpoolSync(interval time.Duration) Option {
	return optionFunc(func(c config) config {
		c.spoolSync = interval
		return c
	})
}

// WithQueueBytes sets the memory budget.
//
// Deprecated: use WithMemoryBudget, which it is: the budget covers the
// requests in flight as well as the queue.
func WithQueueBytes(n int) Option { return WithMemoryBudget(n) }

// WithMaxRequestSize sets the largest request body, in bytes before
// compression. The default is 1 MiB, well under the 4 MiB a gRPC server
// accepts by default. Queued batches are combined into requests up to this
// size; a batch is split so that no request exceeds it, and a single span
// larger than it is dropped with reason too_large.
func WithMaxRequestSize(n int) Option {
	return optionFunc(func(c config) config {
		c.maxRequestBytes = n
		return c
	})
}

// WithBlockOnFull makes ExportSpans wait up to maxWait for room in a full
// queue before dropping (reason queue_full). The default is not to wait: the
// caller, the BatchSpanProcessor's goroutine, is never held up.
func WithBlockOnFull(maxWait time.Duration) Option {
	return optionFunc(func(c config) config {
		c.blockOnFull = maxWait
		return c
	})
}

// WithLogger sets the fallback logger that reports configuration errors,
// drops and failed requests. The default logs warnings and errors to
// standard error. Reports of drops are aggregated: at most one entry per
// reporting interval (see WithLogInterval), with counts per reason.
// A nil logger restores the default; zap.NewNop() silences it.
func WithLogger(l *zap.Logger) Option {
	return optionFunc(func(c config) config {
		c.logger = l
		return c
	})
}

// WithLogInterval sets how often, at most, drops and failures are reported
// to the fallback logger. The default is 10s. The first drop after a quiet
// interval is reported at once.
func WithLogInterval(d time.Duration) Option {
	return optionFunc(func(c config) config {
		c.logInterval = d
		return c
	})
}

// WithDroppedSpansWriter writes every dropped request to w as one line of
// OTLP/JSON (an ExportTraceServiceRequest), so the spans can be replayed
// later, for example with curl against a collector's /v1/traces. Writes are
// serialised; errors writing to w are reported to the fallback logger. The
// default writes nothing.
func WithDroppedSpansWriter(w io.Writer) Option {
	return optionFunc(func(c config) config {
		c.dropWriter = w
		return c
	})
}

// WithMeterProvider sets the MeterProvider for the exporter's own metrics.
// The default is the global one, otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c config) config {
		c.meterProvider = mp
		return c
	})
}

// withClock replaces the clock used for retry delays and log intervals.
func withClock(clk clockwork.Clock) Option {
	return optionFunc(func(c config) config {
		c.clock = clk
		return c
	})
}

// String prints the compression as the OTLP environment variables spell it.
func (c Compression) String() string {
	switch c {
	case NoCompression:
		return "none"
	case GzipCompression:
		return "gzip"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}
