package transport

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

// maxResponseBytes bounds how much of a response body is read.
const maxResponseBytes = 64 << 10

// HTTPConfig configures an OTLP/HTTP client.
type HTTPConfig struct {
	// URL is the full request URL, e.g. http://localhost:4318/v1/traces.
	URL string
	// Headers are sent with every request. Their values are never logged
	// nor put in errors.
	Headers map[string]string
	// Gzip compresses request bodies.
	Gzip bool
	// TLS configures https connections; nil uses the system roots.
	TLS *tls.Config
	// Timeout bounds each attempt; zero means none beyond the context.
	Timeout time.Duration
	// MaxConns is the number of connections kept open to the backend,
	// normally the number of concurrent senders.
	MaxConns int
	// UserAgent is sent as the User-Agent header.
	UserAgent string
}

// HTTPClient sends OTLP/HTTP requests with a protobuf body.
type HTTPClient struct {
	cfg    HTTPConfig
	client *http.Client
	header http.Header
}

var _ Client = (*HTTPClient)(nil)

// NewHTTP returns a client for cfg. The proxy environment variables
// (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) are honoured.
func NewHTTP(cfg HTTPConfig) *HTTPClient {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 1
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = cfg.MaxConns
	tr.MaxIdleConnsPerHost = cfg.MaxConns
	tr.TLSClientConfig = cfg.TLS
	h := make(http.Header, len(cfg.Headers)+3)
	for k, v := range cfg.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/x-protobuf")
	if cfg.UserAgent != "" {
		h.Set("User-Agent", cfg.UserAgent)
	}
	if cfg.Gzip {
		h.Set("Content-Encoding", "gzip")
	}
	return &HTTPClient{cfg: cfg, client: &http.Client{Transport: tr}, header: h}
}

type gzipBuffer struct {
	buf bytes.Buffer
	zw  *gzip.Writer
}

var gzipPool = sync.Pool{New: func() any {
	g := new(gzipBuffer)
	g.zw = gzip.NewWriter(&g.buf)
	return g
}}

// Send makes one attempt to deliver the concatenation of parts.
func (c *HTTPClient) Send(ctx context.Context, parts [][]byte) (Response, error) {
	var body io.Reader
	var size int64
	if c.cfg.Gzip {
		g := gzipPool.Get().(*gzipBuffer)
		defer gzipPool.Put(g)
		g.buf.Reset()
		g.zw.Reset(&g.buf)
		for _, p := range parts {
			if _, err := g.zw.Write(p); err != nil {
				return Response{}, &Error{Kind: Permanent, Err: fmt.Errorf("gzip: %w", err)}
			}
		}
		if err := g.zw.Close(); err != nil {
			return Response{}, &Error{Kind: Permanent, Err: fmt.Errorf("gzip: %w", err)}
		}
		body, size = bytes.NewReader(g.buf.Bytes()), int64(g.buf.Len())
	} else {
		// net.Buffers consumes the slice it reads from: give it a copy of
		// the slice headers, never the caller's.
		nb := make(net.Buffers, len(parts))
		copy(nb, parts)
		for _, p := range parts {
			size += int64(len(p))
		}
		body = &nb
	}
	if c.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, body)
	if err != nil {
		return Response{}, &Error{Kind: Permanent, Err: err}
	}
	req.Header = c.header.Clone()
	req.ContentLength = size
	resp, err := c.client.Do(req)
	if err != nil {
		kind := Retryable
		if isCertificateError(err) {
			// Retrying cannot fix a certificate the client does not trust.
			kind = Permanent
		}
		return Response{}, &Error{Kind: kind, Err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	// Drain what is left so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4*maxResponseBytes))

	switch sc := resp.StatusCode; {
	case sc >= 200 && sc < 300:
		out := Response{Status: sc}
		if readErr != nil {
			out.Message = fmt.Sprintf("response body unreadable: %v", readErr)
			return out, nil
		}
		var msg coltracepb.ExportTraceServiceResponse
		if err := proto.Unmarshal(data, &msg); err != nil {
			out.Message = fmt.Sprintf("response body is not an ExportTraceServiceResponse: %v", err)
			return out, nil
		}
		if ps := msg.GetPartialSuccess(); ps != nil {
			out.Rejected = ps.GetRejectedSpans()
			out.Message = ps.GetErrorMessage()
		}
		return out, nil
	case sc == http.StatusTooManyRequests, sc == http.StatusBadGateway,
		sc == http.StatusServiceUnavailable, sc == http.StatusGatewayTimeout:
		return Response{}, &Error{
			Kind:     Retryable,
			Status:   sc,
			Throttle: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
			Err:      errors.New(statusMessage(resp.Status, data)),
		}
	case sc == http.StatusRequestEntityTooLarge:
		return Response{}, &Error{Kind: TooLarge, Status: sc, Err: errors.New(statusMessage(resp.Status, data))}
	default:
		return Response{}, &Error{Kind: Permanent, Status: sc, Err: errors.New(statusMessage(resp.Status, data))}
	}
}

// Close releases idle connections.
func (c *HTTPClient) Close() error {
	c.client.CloseIdleConnections()
	return nil
}

// statusMessage describes a failed answer: the google.rpc.Status message the
// OTLP specification asks servers to send, or else a short, printable
// excerpt of the body.
func statusMessage(status string, body []byte) string {
	var st spb.Status
	if len(body) > 0 && proto.Unmarshal(body, &st) == nil && st.GetMessage() != "" {
		return status + ": " + st.GetMessage()
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(body), "\uFFFD"))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if s == "" {
		return status
	}
	return status + ": " + s
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// isCertificateError reports whether err is a failure to verify the
// server's certificate.
func isCertificateError(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the
// request URL, keeping the cause (connection refused, timeout…).
func unwrapURLError(err error) error {
	// Not errors.As into net.Error: *url.Error is one itself.
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
