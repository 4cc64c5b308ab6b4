package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip compressor
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// exportMethod is the OTLP trace service's only method.
const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// GRPCConfig configures an OTLP/gRPC client.
type GRPCConfig struct {
	// Target is the server's "host:port", or a gRPC target name such as
	// "dns:///collector:4317" or "unix:///run/otlp.sock", given to
	// grpc.NewClient as it is.
	Target string
	// Insecure uses a plaintext connection; otherwise TLS with the TLS
	// configuration (nil: the system roots).
	Insecure bool
	TLS      *tls.Config
	// Headers are sent as request metadata. Their values are never logged
	// nor put in errors.
	Headers map[string]string
	// Gzip compresses requests.
	Gzip      bool
	UserAgent string
	// Credentials, when set, replace Insecure and TLS.
	Credentials credentials.TransportCredentials
	// ServiceConfig is the default service config, in JSON.
	ServiceConfig string
	// MinConnectTimeout is the least time given to a connection attempt;
	// zero means gRPC's default (20s).
	MinConnectTimeout time.Duration
	// DialOptions are appended last, so they win over the options derived
	// from the fields above.
	DialOptions []grpc.DialOption
	// Conn, when set, is used instead of a connection of our own: every
	// field above that concerns connecting is ignored, and Close leaves
	// it open.
	Conn *grpc.ClientConn
}

// connectBackoff is the reconnection backoff: gRPC's own starts at 1s
// and grows to 2 minutes, so that after an outage a connection may stay
// down long after the backend is back. This one tries again within a
// second at most, about as soon as OTLP/HTTP, which dials on each retry.
// defaultMinConnectTimeout is gRPC's own.
const defaultMinConnectTimeout = 20 * time.Second

var connectBackoff = backoff.Config{
	BaseDelay:  100 * time.Millisecond,
	Multiplier: 1.6,
	Jitter:     0.2,
	MaxDelay:   time.Second,
}

// GRPCClient sends OTLP/gRPC Export calls. The request body is already
// encoded, so it is passed to gRPC through a codec that only copies bytes.
type GRPCClient struct {
	cfg    GRPCConfig
	conn   *grpc.ClientConn
	shared bool // conn is the caller's
	// lastRedial is when redial last cut the backoff short, in Unix
	// nanoseconds.
	lastRedial atomic.Int64
	md         metadata.MD
	opts       []grpc.CallOption
	certs      *certWatch // nil for plaintext
	redact     *strings.Replacer
}

var _ Client = (*GRPCClient)(nil)

// NewGRPC returns a client for cfg. Connecting is lazy: an unreachable
// server shows up as retryable failures of Send.
func NewGRPC(cfg GRPCConfig) (*GRPCClient, error) {
	var certs *certWatch
	conn, shared := cfg.Conn, cfg.Conn != nil
	if conn == nil {
		var creds credentials.TransportCredentials
		switch {
		case cfg.Credentials != nil:
			certs = &certWatch{TransportCredentials: cfg.Credentials}
			creds = certs
		case cfg.Insecure:
			creds = insecure.NewCredentials()
		default:
			tc := cfg.TLS
			if tc == nil {
				tc = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			certs = &certWatch{TransportCredentials: credentials.NewTLS(tc)}
			creds = certs
		}
		params := grpc.ConnectParams{Backoff: connectBackoff, MinConnectTimeout: cfg.MinConnectTimeout}
		if params.MinConnectTimeout <= 0 {
			params.MinConnectTimeout = defaultMinConnectTimeout
		}
		dial := []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithConnectParams(params)}
		if cfg.UserAgent != "" {
			dial = append(dial, grpc.WithUserAgent(cfg.UserAgent))
		}
		if cfg.ServiceConfig != "" {
			dial = append(dial, grpc.WithDefaultServiceConfig(cfg.ServiceConfig))
		}
		dial = append(dial, cfg.DialOptions...)
		var err error
		conn, err = grpc.NewClient(cfg.Target, dial...)
		if err != nil {
			return nil, fmt.Errorf("transport: grpc target %q: %w", cfg.Target, err)
		}
		// gRPC takes a target whose scheme it has no resolver for, from
		// the registry or a dial option, for a DNS name whole, which never
		// resolves.
		if scheme, _, written := strings.Cut(cfg.Target, "://"); written && !strings.HasPrefix(strings.ToLower(conn.CanonicalTarget()), strings.ToLower(scheme)+"://") {
			_ = conn.Close()
			return nil, fmt.Errorf("transport: gRPC has no resolver for the scheme %q, neither registered (resolver.Register) nor given by a dial option (grpc.WithResolvers)", scheme)
		}
	}
	c := &GRPCClient{cfg: cfg, conn: conn, shared: shared, md: metadata.New(cfg.Headers), certs: certs, redact: Redactor(cfg.Headers)}
	c.opts = []grpc.CallOption{grpc.ForceCodecV2(rawCodec{})}
	if cfg.Gzip {
		c.opts = append(c.opts, grpc.UseCompressor("gzip"))
	}
	return c, nil
}

// Send makes one Export call whose request is the concatenation of parts.
// The call is bounded by ctx alone.
//
// gRPC compresses each message itself: the body is sent from its parts.
func (c *GRPCClient) Send(ctx context.Context, body *Body) (Response, error) {
	parts := body.Parts
	if len(c.md) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, c.md)
	}
	var resp coltracepb.ExportTraceServiceResponse
	err := c.conn.Invoke(ctx, exportMethod, rawRequest(parts), &resp, c.opts...)
	if err == nil {
		out := Response{Status: int(codes.OK), Code: codeName(codes.OK)}
		if ps := resp.GetPartialSuccess(); ps != nil {
			out.Rejected = ps.GetRejectedSpans()
			out.Message = c.redact.Replace(ps.GetErrorMessage())
		}
		return out, nil
	}
	e := classifyGRPC(err, c.redact)
	if e.Kind == Retryable && st(err) == codes.Unavailable {
		c.redial()
	}
	if e.Kind == Retryable && st(err) == codes.Unavailable && c.certs != nil {
		if certErr := c.certs.failure(); certErr != nil {
			// The connection failed because the server's certificate is
			// not trusted: retrying cannot fix that.
			e.Kind, e.Err = Permanent, certErr
		}
	}
	return Response{}, e
}

func st(err error) codes.Code { return status.Code(err) }

// redialEvery bounds how often a failed call cuts the reconnection
// backoff short.
const redialEvery = 50 * time.Millisecond

// redial makes a connection waiting out its reconnection backoff try
// again now, at most once per redialEvery. A gRPC connection that failed
// fails every call at once until its backoff ends, where OTLP/HTTP dials
// anew for each request: without this, delivery resumed up to a backoff
// interval after the backend was back. The caller's connection
// (WithGRPCConn) is left to its own policy.
func (c *GRPCClient) redial() {
	if c.shared || c.conn.GetState() != connectivity.TransientFailure {
		return
	}
	now := time.Now().UnixNano()
	last := c.lastRedial.Load()
	if now-last < int64(redialEvery) || !c.lastRedial.CompareAndSwap(last, now) {
		return
	}
	c.conn.ResetConnectBackoff()
}

// Close closes the connection, unless it is the caller's.
func (c *GRPCClient) Close() error {
	if c.shared {
		return nil
	}
	return c.conn.Close()
}

// classifyGRPC applies the OTLP/gRPC rules: Canceled, DeadlineExceeded,
// Aborted, OutOfRange, Unavailable and DataLoss are retryable;
// ResourceExhausted is retryable when the server sent RetryInfo and
// otherwise means the request was too large; every other code is
// permanent. RetryInfo's delay is honoured.
//
// A RESOURCE_EXHAUSTED whose message says the message was larger than the
// server's maximum is about size alone; any other one is Paced, since it
// may mean "over quota".
func classifyGRPC(err error, redact *strings.Replacer) *Error {
	st, ok := status.FromError(err)
	if !ok {
		return &Error{Kind: Retryable, Err: err}
	}
	var throttle time.Duration
	hasRetryInfo := false
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			hasRetryInfo = true
			// A delay below zero asks for none.
			throttle = max(ri.GetRetryDelay().AsDuration(), 0)
		}
	}
	e := &Error{Status: int(st.Code()), Code: codeName(st.Code()), Throttle: throttle,
		Err: errors.New(st.Code().String() + ": " + Excerpt(redact, st.Message()))}
	hint, permanent := grpcMisconfig(st.Code(), st.Message())
	if hint != "" {
		e.Err = fmt.Errorf("%s (%w)", hint, e.Err)
	}
	if permanent {
		e.Kind = Permanent
		return e
	}
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.Unavailable, codes.DataLoss:
		e.Kind = Retryable
	case codes.ResourceExhausted:
		if hasRetryInfo {
			e.Kind = Retryable
		} else {
			e.Kind = TooLarge
			e.Paced = !strings.Contains(st.Message(), "larger than max")
		}
	default:
		e.Kind = Permanent
	}
	return e
}

// codeName spells a gRPC code as the semantic conventions do:
// DEADLINE_EXCEEDED for codes.DeadlineExceeded.
func codeName(c codes.Code) string {
	name := c.String()
	var b strings.Builder
	prevLower := false
	for _, r := range name {
		if prevLower && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		prevLower = unicode.IsLower(r)
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// certWatch wraps TLS credentials to remember why the last handshake
// failed: gRPC reports a certificate it does not trust as UNAVAILABLE,
// like a server that is down.
type certWatch struct {
	credentials.TransportCredentials
	mu   sync.Mutex
	last error // the last handshake's certificate error; nil after a success
}

func (w *certWatch) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := w.TransportCredentials.ClientHandshake(ctx, authority, raw)
	w.mu.Lock()
	if err == nil {
		w.last = nil
	} else if isCertificateError(err) {
		w.last = fmt.Errorf("server certificate not trusted: %w", err)
	}
	w.mu.Unlock()
	return conn, info, err
}

func (w *certWatch) Clone() credentials.TransportCredentials {
	return &certWatch{TransportCredentials: w.TransportCredentials.Clone()}
}

func (w *certWatch) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// rawRequest is an encoded ExportTraceServiceRequest in parts.
type rawRequest [][]byte

// rawCodec sends rawRequest bytes as they are and decodes responses as
// protobuf messages. It keeps the "proto" name so the content type is the
// standard application/grpc+proto.
type rawCodec struct{}

var _ encoding.CodecV2 = rawCodec{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(rawRequest); ok {
		// Copy into gRPC's own pooled buffers: a cancelled call can return
		// while the transport still holds the message, and the caller
		// reuses its buffers once Send returns.
		bs := make(mem.BufferSlice, len(r))
		for i, p := range r {
			bs[i] = mem.Copy(p, mem.DefaultBufferPool())
		}
		return bs, nil
	}
	return nil, fmt.Errorf("transport: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("transport: cannot unmarshal into %T", v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

func (rawCodec) Name() string { return "proto" }
