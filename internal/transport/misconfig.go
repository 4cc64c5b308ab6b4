package transport

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
)

// Misconfigurations that look like a backend that is down but are not:
// retrying cannot fix them, so they fail at the first attempt, as
// permanent errors that name the likely mistake.
const (
	hintTLSToPlaintext = "the endpoint does not speak TLS: use an http:// endpoint URL, WithInsecure, or OTEL_EXPORTER_OTLP_INSECURE=true"
	hintHTTPToGRPC     = "the endpoint answered in HTTP/2 frames, as an OTLP/gRPC port (usually 4317) does: use the OTLP/HTTP port (usually 4318), or WithProtocol(ProtocolGRPC) / OTEL_EXPORTER_OTLP_PROTOCOL=grpc"
	hintGRPCToHTTP     = "the endpoint answered in HTTP/1, as an OTLP/HTTP port (usually 4318) does: use the OTLP/gRPC port (usually 4317), or the http/protobuf protocol"
)

// httpMisconfig explains an OTLP/HTTP attempt's transport failure when it
// can only come from a wrong setting; nil otherwise. sawH2 tells that a
// connection read an HTTP/2 SETTINGS frame before any answer.
func httpMisconfig(err error, sawH2 bool) error {
	var rh tls.RecordHeaderError
	msg := err.Error()
	switch {
	case errors.As(err, &rh), strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%s (%w)", hintTLSToPlaintext, err)
	case sawH2, strings.Contains(msg, `malformed HTTP response "\x00\x00`):
		// An HTTP/1 client read a gRPC server's SETTINGS frame.
		return fmt.Errorf("%s (%w)", hintHTTPToGRPC, err)
	}
	return nil
}

// grpcMisconfig is httpMisconfig for the message of an OTLP/gRPC failure.
func grpcMisconfig(msg string) string {
	switch {
	case strings.Contains(msg, "first record does not look like a TLS handshake"),
		strings.Contains(msg, "server gave HTTP response"):
		return hintTLSToPlaintext
	case strings.Contains(msg, "http2: frame too large"),
		strings.Contains(msg, "unexpected HTTP status code received from server"),
		strings.Contains(msg, "received unexpected content-type"):
		// An HTTP/1 answer read as an HTTP/2 frame header, or an h2c
		// HTTP server answering a gRPC method it does not serve.
		return hintGRPCToHTTP
	}
	return ""
}
