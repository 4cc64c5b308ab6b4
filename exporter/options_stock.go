package exporter

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// The options in this file complete the set of otlptracehttp and
// otlptracegrpc (v1.47.0): a program written against either compiles
// against this package after replacing the import and the New call.
//
// One Option set serves both protocols. An option that concerns one
// protocol only is ignored under the other, and New logs a warning that
// names it: the protocol may be chosen at deployment by
// OTEL_EXPORTER_OTLP_PROTOCOL, and a program should not stop exporting
// for it. Each option's doc says which protocol it applies to.

// Encoding is the encoding of OTLP/HTTP request bodies.
type Encoding int

const (
	// EncodingProtobuf sends protobuf bodies (application/x-protobuf), the
	// default.
	EncodingProtobuf Encoding = iota
	// EncodingJSON sends OTLP/JSON bodies (application/json).
	EncodingJSON
)

// ProtocolHTTPJSON is OTLP/HTTP with OTLP/JSON bodies: the same as
// ProtocolHTTPProtobuf with WithEncoding(EncodingJSON).
const ProtocolHTTPJSON Protocol = "http/json"

// HTTPTransportProxyFunc picks the proxy of a request, as
// http.Transport.Proxy does; http.ProxyFromEnvironment and
// http.ProxyURL(u) are such functions.
type HTTPTransportProxyFunc func(*http.Request) (*url.URL, error)

// WithEncoding chooses the encoding of OTLP/HTTP bodies: EncodingProtobuf
// (the default) or EncodingJSON. Spans are encoded to protobuf when queued
// and converted to OTLP/JSON at each attempt, so WithMaxRequestSize and the
// memory budget count protobuf bytes; the dropped-spans writer and
// splitting are unchanged.
//
// OTLP/HTTP only; ignored with ProtocolGRPC. Environment:
// OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL=http/json; this option wins. Of
// WithEncoding and WithProtocol, the last one given wins.
func WithEncoding(enc Encoding) Option {
	return optionFunc(func(c config) config {
		c.httpOnly = append(c.httpOnly, "WithEncoding")
		if enc != EncodingProtobuf && enc != EncodingJSON {
			c.errs = append(c.errs, fmt.Errorf("exporter: unknown encoding %d (want EncodingProtobuf or EncodingJSON)", int(enc)))
			return c
		}
		if c.protocol == ProtocolGRPC {
			return c
		}
		c.protocol = ProtocolHTTPProtobuf
		if enc == EncodingJSON {
			c.protocol = ProtocolHTTPJSON
		}
		return c
	})
}

// WithMaxResponseSize bounds how much of a response body is read, in
// bytes. The default is 64 KiB (otlptracehttp reads up to 4 MiB): an OTLP
// response is a short status or partial-success message. What is past
// the limit is drained, not read, and a body cut short is reported as
// unreadable, never as a failure. Values of zero or less are ignored.
//
// OTLP/HTTP only; ignored with ProtocolGRPC.
func WithMaxResponseSize(size int64) Option {
	return optionFunc(func(c config) config {
		c.httpOnly = append(c.httpOnly, "WithMaxResponseSize")
		if size > 0 {
			c.maxResponseBytes = size
		}
		return c
	})
}

// WithProxy sets the function that picks the proxy of each request. The
// default is http.ProxyFromEnvironment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY).
// Ignored with WithHTTPClient, whose transport decides.
//
// OTLP/HTTP only; ignored with ProtocolGRPC.
func WithProxy(pf HTTPTransportProxyFunc) Option {
	return optionFunc(func(c config) config {
		c.httpOnly = append(c.httpOnly, "WithProxy")
		c.proxy = pf
		return c
	})
}

// WithHTTPClient sends requests with client instead of a client of the
// exporter's own. Its Transport, Timeout and Jar are used as they are;
// WithTLSClientConfig, WithProxy and the certificate environment
// variables do not apply, since the transport is the caller's. WithTimeout still bounds each attempt, and
// WithInsecure (or the endpoint URL's scheme) still chooses between http
// and https. A nil CheckRedirect is replaced, in the exporter's copy of the
// client, by its own policy of following no redirect.
//
// Ownership: the client and its transport stay the caller's: Shutdown
// neither closes them nor their idle connections. Request bodies are the
// exporter's pooled buffers, valid until the transport's RoundTrip has
// returned and closed the request body: a transport must not read a body
// after that (net/http's does not). Size the transport's idle connections
// (MaxIdleConnsPerHost, 2 by default in net/http) for the exporter's
// concurrency (WithMaxConcurrency), or connections are reopened under load.
// A transport that instruments requests (otelhttp) would trace the
// exporter's own requests, and so on forever: do not use one.
//
// OTLP/HTTP only; ignored with ProtocolGRPC.
func WithHTTPClient(client *http.Client) Option {
	return optionFunc(func(c config) config {
		c.httpOnly = append(c.httpOnly, "WithHTTPClient")
		c.httpClient = client
		return c
	})
}

// WithCompressor sets the compression by name, as otlptracegrpc spells it:
// "gzip", or "none" (and "") for none. It is WithCompression under
// another name and applies to both protocols; an unknown name is a
// configuration error.
//
// Environment: OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION; this option wins.
func WithCompressor(name string) Option {
	return optionFunc(func(c config) config {
		switch name {
		case "gzip":
			c.compression = GzipCompression
		case "", "none":
			c.compression = NoCompression
		default:
			c.errs = append(c.errs, fmt.Errorf("exporter: unknown compressor %q (want gzip or none)", name))
		}
		return c
	})
}

// WithReconnectionPeriod sets the least time given to each attempt to
// connect (grpc.ConnectParams.MinConnectTimeout), which is what
// otlptracegrpc does with it; gRPC's default is 20s. Between attempts the
// exporter waits from 100ms growing to at most 1s (gRPC's own backoff
// grows to 2 minutes), and a call that fails while the connection waits
// out its backoff makes it try again at once (at most every 50ms), so
// delivery resumes about as soon as with OTLP/HTTP, which dials anew for
// each request (see BenchmarkResumeAfterOutage in bench/).
//
// OTLP/gRPC only; ignored with OTLP/HTTP and with WithGRPCConn.
func WithReconnectionPeriod(rp time.Duration) Option {
	return optionFunc(func(c config) config {
		c.grpcOnly = append(c.grpcOnly, "WithReconnectionPeriod")
		if rp < 0 {
			c.errs = append(c.errs, fmt.Errorf("exporter: reconnection period must not be negative, got %v", rp))
			return c
		}
		c.reconnectionPeriod = rp
		return c
	})
}

// WithTLSCredentials sets the connection's transport credentials, for
// example credentials.NewTLS(cfg) or credentials that rotate
// certificates. They replace WithTLSClientConfig, WithInsecure and the
// certificate environment variables for gRPC.
//
// OTLP/gRPC only; ignored with OTLP/HTTP and with WithGRPCConn.
func WithTLSCredentials(creds credentials.TransportCredentials) Option {
	return optionFunc(func(c config) config {
		c.grpcOnly = append(c.grpcOnly, "WithTLSCredentials")
		c.grpcCreds = creds
		return c
	})
}

// WithServiceConfig sets the default gRPC service config, in JSON (see
// grpc.WithDefaultServiceConfig). Leave retries out of it: the exporter
// retries itself, and both together multiply the attempts.
//
// OTLP/gRPC only; ignored with OTLP/HTTP and with WithGRPCConn.
func WithServiceConfig(serviceConfig string) Option {
	return optionFunc(func(c config) config {
		c.grpcOnly = append(c.grpcOnly, "WithServiceConfig")
		c.serviceConfig = serviceConfig
		return c
	})
}

// WithDialOption adds options to those the connection is made with. They
// come last, so they win over the exporter's own (credentials, connect
// backoff, user agent, service config). Blocking dial options do not
// apply: the connection is made lazily (grpc.NewClient). Nil options are
// ignored.
//
// OTLP/gRPC only; ignored with OTLP/HTTP and with WithGRPCConn.
func WithDialOption(opts ...grpc.DialOption) Option {
	return optionFunc(func(c config) config {
		c.grpcOnly = append(c.grpcOnly, "WithDialOption")
		c.dialOptions = nil
		for _, o := range opts {
			if o != nil {
				c.dialOptions = append(c.dialOptions, o)
			}
		}
		return c
	})
}

// WithGRPCConn sends every request over conn instead of a connection of
// the exporter's own. WithEndpoint, WithEndpointURL, WithInsecure,
// WithTLSClientConfig, WithTLSCredentials, WithServiceConfig,
// WithDialOption, WithReconnectionPeriod and the endpoint and certificate
// environment variables then do not apply; headers, compression, timeouts
// and retries do.
//
// Ownership: conn stays the caller's: Shutdown does not close it, and the
// caller closes it after Shutdown has returned.
//
// OTLP/gRPC only; ignored with OTLP/HTTP.
func WithGRPCConn(conn *grpc.ClientConn) Option {
	return optionFunc(func(c config) config {
		c.grpcOnly = append(c.grpcOnly, "WithGRPCConn")
		c.grpcConn = conn
		return c
	})
}
