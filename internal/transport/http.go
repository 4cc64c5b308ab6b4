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
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tracekeeper/tracekeeper/internal/otlpenc"
)

// maxResponseBytes bounds how much of a response body is read.
const maxResponseBytes = 64 << 10

// maxMessageBytes bounds the excerpt of a response body put in an error.
const maxMessageBytes = 200

// HTTPConfig configures an OTLP/HTTP client.
type HTTPConfig struct {
	// URL is the full request URL, e.g. http://localhost:4318/v1/traces.
	URL string
	// Headers are sent with every request. Their values are never logged
	// nor put in errors, even when a backend echoes them.
	Headers map[string]string
	// Gzip compresses request bodies.
	Gzip bool
	// TLS configures https connections; nil uses the system roots.
	TLS *tls.Config
	// MaxConns is the number of connections kept open to the backend,
	// normally the number of concurrent senders.
	MaxConns int
	// UserAgent is sent as the User-Agent header.
	UserAgent string
	// JSON sends OTLP/JSON bodies (application/json) instead of protobuf.
	// The parts stay protobuf: each attempt converts them.
	JSON bool
	// MaxResponseBytes bounds how much of a response body is read; zero
	// or less means 64 KiB.
	MaxResponseBytes int64
	// Proxy picks the proxy of each request; nil means the proxy
	// environment variables (http.ProxyFromEnvironment).
	Proxy func(*http.Request) (*url.URL, error)
	// Client, when set, sends the requests instead of a client of our
	// own: its transport, timeout and redirect policy are used as they
	// are (a nil CheckRedirect gets ours, which follows no redirect), TLS,
	// Proxy and MaxConns do not apply, and Close leaves its connections
	// alone.
	Client *http.Client
}

// HTTPClient sends OTLP/HTTP requests with a protobuf body.
//
// Redirects are not followed: a 3xx answer is a permanent failure that
// names where the backend pointed. Following one would resend the request
// (or, for 301, 302 and 303, turn it into a body-less GET that "succeeds"
// with nothing delivered), and could carry the configured headers,
// credentials among them, to another host.
type HTTPClient struct {
	cfg    HTTPConfig
	client *http.Client
	header http.Header
	redact *strings.Replacer
	shared bool // the client is the caller's
	// sawH2 is set when a connection of ours read an HTTP/2 SETTINGS
	// frame first: the endpoint is a gRPC port.
	sawH2 atomic.Bool
}

var _ Client = (*HTTPClient)(nil)

// NewHTTP returns a client for cfg. The proxy environment variables
// (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) are honoured. The client has its own
// transport, with the settings of net/http's default one: a program may
// have replaced http.DefaultTransport with a wrapper.
func NewHTTP(cfg HTTPConfig) *HTTPClient {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 1
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = maxResponseBytes
	}
	proxy := cfg.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	hc := &HTTPClient{cfg: cfg, redact: Redactor(cfg.Headers)}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: proxy,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &sniffConn{Conn: c, sawH2: &hc.sawH2}, nil
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          cfg.MaxConns,
		MaxIdleConnsPerHost:   cfg.MaxConns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       cfg.TLS,
	}
	h := make(http.Header, len(cfg.Headers)+3)
	for k, v := range cfg.Headers {
		h.Set(k, v)
	}
	if cfg.JSON {
		h.Set("Content-Type", "application/json")
	} else {
		h.Set("Content-Type", "application/x-protobuf")
	}
	if cfg.UserAgent != "" && h.Get("User-Agent") == "" {
		// A User-Agent among the configured headers wins, as with
		// otlptracehttp.
		h.Set("User-Agent", cfg.UserAgent)
	}
	if cfg.Gzip {
		h.Set("Content-Encoding", "gzip")
	}
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc.header = h
	if cfg.Client != nil {
		// A copy, so that the redirect policy set here stays ours.
		client := *cfg.Client
		if client.CheckRedirect == nil {
			client.CheckRedirect = noRedirect
		}
		hc.client, hc.shared = &client, true
		return hc
	}
	hc.client = &http.Client{Transport: tr, CheckRedirect: noRedirect}
	return hc
}

// sniffConn notes whether the server spoke first with an HTTP/2 SETTINGS
// frame, as a gRPC server does on a plaintext port: an HTTP/1 client then
// fails in ways that depend on timing ("malformed HTTP response", or the
// answer arriving on an idle connection), so the failure is recognised by
// what the connection read rather than by the error.
type sniffConn struct {
	net.Conn
	first atomic.Bool // the first read has been looked at
	sawH2 *atomic.Bool
}

func (c *sniffConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.first.CompareAndSwap(false, true) && isSettingsFrame(b[:n]) {
		c.sawH2.Store(true)
	}
	return n, err
}

// isSettingsFrame reports whether b starts with an HTTP/2 frame header of
// a SETTINGS frame (type 4) on stream 0.
func isSettingsFrame(b []byte) bool {
	return len(b) >= 9 && b[3] == 0x04 && b[5]&0x7f == 0 && b[6] == 0 && b[7] == 0 && b[8] == 0
}

type gzipBuffer struct {
	buf bytes.Buffer
	zw  *gzip.Writer
}

// gzipWriters holds the idle compressors, and gzipSlots bounds how many
// exist: each holds about a megabyte of state, and compressing is CPU
// work that more goroutines than cores cannot speed up. A request waits
// for a compressor on its own goroutine, never on the caller's.
var (
	gzipWriters = make(chan *gzip.Writer, gzipMax)
	gzipSlots   = make(chan struct{}, gzipMax)
	gzipMax     = max(runtime.GOMAXPROCS(0), 2)
)

// compressorBytes is what one compressor holds, measured for
// gzip.BestSpeed: about 1.2 MB.
const compressorBytes = 1280 << 10

// CompressorsMemory is the most memory the compressors of every HTTP
// client together hold.
func CompressorsMemory() int64 { return int64(gzipMax) * compressorBytes }

func getGzipWriter(w io.Writer) *gzip.Writer {
	select {
	case zw := <-gzipWriters:
		zw.Reset(w)
		return zw
	case gzipSlots <- struct{}{}:
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		return zw
	}
}

func putGzipWriter(zw *gzip.Writer) { gzipWriters <- zw }

// maxPooledGzip is the largest compressed buffer kept for reuse.
const maxPooledGzip = 4 << 20

var gzipBuffers = sync.Pool{New: func() any { return new(gzipBuffer) }}

func putGzip(g *gzipBuffer) {
	if g.buf.Cap() > maxPooledGzip {
		return
	}
	g.buf.Reset()
	gzipBuffers.Put(g)
}

// compress returns the gzip encoding of parts in a pooled buffer.
func compress(parts [][]byte) (*gzipBuffer, error) { return compressFrom(nil, parts) }

// compressFrom returns the gzip encoding of what head reads, if not nil,
// followed by parts, in a pooled buffer.
func compressFrom(head io.Reader, parts [][]byte) (*gzipBuffer, error) {
	g := gzipBuffers.Get().(*gzipBuffer)
	g.buf.Reset()
	zw := getGzipWriter(&g.buf)
	defer putGzipWriter(zw)
	if head != nil {
		if _, err := io.Copy(zw, head); err != nil {
			putGzip(g)
			return nil, err
		}
	}
	for _, p := range parts {
		if _, err := zw.Write(p); err != nil {
			putGzip(g)
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		putGzip(g)
		return nil, err
	}
	return g, nil
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// Compress replaces body's parts, for every attempt, by their gzip
// encoding when the client compresses; the caller may then release the
// parts' buffers (setting Parts to nil). It reports whether it did.
//
// A JSON client compresses nothing ahead: its parts must stay protobuf
// (for splitting and the dropped-spans writer), and each attempt converts
// and compresses them.
func (c *HTTPClient) Compress(body *Body) (bool, error) {
	if !c.cfg.Gzip || c.cfg.JSON || body.gz != nil {
		return false, nil
	}
	g, err := compress(body.Parts)
	if err != nil {
		return false, &Error{Kind: Permanent, Err: fmt.Errorf("gzip: %w", err)}
	}
	body.gz = g
	return true, nil
}

// Send makes one attempt to deliver body. The attempt is bounded by ctx
// alone.
func (c *HTTPClient) Send(ctx context.Context, b *Body) (Response, error) {
	if _, err := c.Compress(b); err != nil {
		return Response{}, err
	}
	var body io.Reader
	var size int64
	if c.cfg.JSON {
		j, err := c.jsonBody(b)
		if err != nil {
			return Response{}, err
		}
		defer putGzip(j)
		body, size = bytes.NewReader(j.buf.Bytes()), int64(j.buf.Len())
	} else if b.gz != nil {
		body, size = bytes.NewReader(b.gz.buf.Bytes()), int64(b.gz.buf.Len())
	} else {
		// net.Buffers consumes the slice it reads from: give it a copy of
		// the slice headers, never the caller's.
		nb := make(net.Buffers, len(b.Parts))
		copy(nb, b.Parts)
		for _, p := range b.Parts {
			size += int64(len(p))
		}
		body = &nb
	}
	// Whether the request got a connection: a failure before, such as a
	// timeout while dialing, sent nothing.
	var gotConn atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, body)
	if err != nil {
		return Response{}, &Error{Kind: Permanent, Err: err}
	}
	req.Header = c.header.Clone()
	req.ContentLength = size
	resp, err := c.client.Do(req)
	if err != nil {
		unsent := !gotConn.Load()
		kind := Retryable
		if isCertificateError(err) {
			// Retrying cannot fix a certificate the client does not trust.
			kind = Permanent
		}
		err = unwrapURLError(err)
		if hint := httpMisconfig(err, c.sawH2.Load()); hint != nil {
			kind, err = Permanent, hint
		}
		return Response{}, &Error{Kind: kind, Err: err, Unsent: unsent}
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxResponseBytes))
	// Drain what is left so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4*c.cfg.MaxResponseBytes))
	isJSON := strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json")

	sc := resp.StatusCode
	code := strconv.Itoa(sc)
	switch {
	case sc >= 200 && sc < 300:
		out := Response{Status: sc, Code: code}
		if readErr != nil {
			out.Message = fmt.Sprintf("response body unreadable: %v", readErr)
			return out, nil
		}
		var msg coltracepb.ExportTraceServiceResponse
		if err := unmarshal(isJSON, data, &msg); err != nil {
			out.Message = fmt.Sprintf("response body is not an ExportTraceServiceResponse: %v", err)
			return out, nil
		}
		if ps := msg.GetPartialSuccess(); ps != nil {
			out.Rejected = ps.GetRejectedSpans()
			out.Message = c.redact.Replace(ps.GetErrorMessage())
		}
		return out, nil
	case sc >= 300 && sc < 400:
		return Response{}, &Error{Kind: Permanent, Status: sc, Code: code,
			Err: fmt.Errorf("%s: redirect to %s not followed; set the endpoint to the final URL",
				Excerpt(c.redact, resp.Status), Excerpt(c.redact, location(resp)))}
	case sc == http.StatusTooManyRequests, sc == http.StatusBadGateway,
		sc == http.StatusServiceUnavailable, sc == http.StatusGatewayTimeout:
		return Response{}, &Error{
			Kind:     Retryable,
			Status:   sc,
			Code:     code,
			Throttle: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
			Err:      errors.New(c.statusMessage(resp.Status, isJSON, data)),
		}
	case sc == http.StatusRequestEntityTooLarge:
		return Response{}, &Error{Kind: TooLarge, Status: sc, Code: code, Err: errors.New(c.statusMessage(resp.Status, isJSON, data))}
	default:
		msg := c.statusMessage(resp.Status, isJSON, data)
		if sc == http.StatusNotFound {
			msg += " (POST " + redactedURL(req.URL) + ")"
		}
		if sc == http.StatusUnsupportedMediaType && resp.ProtoMajor == 2 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/grpc") {
			msg += ": " + hintHTTPToGRPC
		}
		return Response{}, &Error{Kind: Permanent, Status: sc, Code: code, Err: errors.New(msg)}
	}
}

// Close releases idle connections, unless the client is the caller's.
func (c *HTTPClient) Close() error {
	if !c.shared {
		c.client.CloseIdleConnections()
	}
	return nil
}

// jsonBody returns the OTLP/JSON form of b's protobuf parts, gzipped when
// the client compresses, in a pooled buffer.
func (c *HTTPClient) jsonBody(b *Body) (*gzipBuffer, error) {
	plain, err := b.Plain()
	if err != nil {
		return nil, &Error{Kind: Permanent, Err: fmt.Errorf("gunzip: %w", err)}
	}
	j := gzipBuffers.Get().(*gzipBuffer)
	j.buf.Reset()
	out, err := otlpenc.AppendJSON(j.buf.AvailableBuffer(), plain)
	if err != nil {
		putGzip(j)
		return nil, &Error{Kind: Permanent, Err: fmt.Errorf("json: %w", err)}
	}
	j.buf.Write(out)
	if !c.cfg.Gzip {
		return j, nil
	}
	defer putGzip(j)
	g, err := compress([][]byte{j.buf.Bytes()})
	if err != nil {
		return nil, &Error{Kind: Permanent, Err: fmt.Errorf("gzip: %w", err)}
	}
	return g, nil
}

// unmarshal decodes a response body in the format its content type says.
func unmarshal(isJSON bool, data []byte, m proto.Message) error {
	if isJSON {
		return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, m)
	}
	return proto.Unmarshal(data, m)
}

// location describes where a redirect points, without credentials or
// query.
func location(resp *http.Response) string {
	u, err := resp.Location()
	if err != nil {
		return "an unreadable location"
	}
	return redactedURL(u)
}

// redactedURL prints u without its user info, query and fragment.
func redactedURL(u *url.URL) string {
	v := *u
	v.User, v.RawQuery, v.Fragment, v.RawFragment = nil, "", "", ""
	return v.String()
}

// statusMessage describes a failed answer: the google.rpc.Status message the
// OTLP specification asks servers to send, or else a short, printable
// excerpt of the body. Configured header values are redacted from it, and
// from the status line's reason phrase.
func (c *HTTPClient) statusMessage(status string, isJSON bool, body []byte) string {
	// The reason phrase is the server's text too.
	status = Excerpt(c.redact, status)
	var st spb.Status
	if len(body) > 0 && unmarshal(isJSON, body, &st) == nil && st.GetMessage() != "" {
		return status + ": " + Excerpt(c.redact, st.GetMessage())
	}
	if s := Excerpt(c.redact, string(body)); s != "" {
		return status + ": " + s
	}
	return status
}

// Redactor returns a replacer that hides the values of headers wherever a
// backend's answer repeats them.
func Redactor(headers map[string]string) *strings.Replacer {
	var pairs []string
	for _, v := range headers {
		if v = strings.TrimSpace(v); v != "" {
			pairs = append(pairs, v, "[REDACTED]")
		}
	}
	return strings.NewReplacer(pairs...)
}

// Excerpt returns a short, printable, single-line excerpt of s with the
// redactor applied first, so that a secret is never cut in two and shown
// in part.
func Excerpt(redact *strings.Replacer, s string) string {
	s = redact.Replace(strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD")))
	if len(s) > maxMessageBytes {
		cut := maxMessageBytes
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
// A delay past what a Duration holds is the longest one, never a wrapped
// one.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case secs < 0:
			return 0
		case secs > int(math.MaxInt64/time.Second):
			return math.MaxInt64
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
