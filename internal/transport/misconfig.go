package transport

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
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

// grpcMisconfig is httpMisconfig for the code and message of an OTLP/gRPC
// failure: it returns the hint, and whether the failure is permanent
// whatever its code.
func grpcMisconfig(code codes.Code, msg string) (hint string, permanent bool) {
	switch {
	case strings.Contains(msg, "first record does not look like a TLS handshake"),
		strings.Contains(msg, "server gave HTTP response"):
		return hintTLSToPlaintext, true
	case strings.Contains(msg, "http2: frame too large"):
		// An HTTP/1 answer ("HTTP/1.1 400") read as an HTTP/2 frame header.
		return hintGRPCToHTTP, true
	case code != codes.Unavailable &&
		(strings.Contains(msg, "unexpected HTTP status code received from server") ||
			strings.Contains(msg, "received unexpected content-type")):
		// An HTTP server speaking HTTP/2 (h2c) that does not serve the
		// method: already permanent by its code. A proxy's 502, 503 or 504
		// in front of a gRPC server is UNAVAILABLE, and stays retryable.
		return hintGRPCToHTTP, false
	}
	return "", false
}
