// Package envconfig reads the OTLP exporter settings from the standard
// OTEL_EXPORTER_OTLP_* environment variables, following the OpenTelemetry
// specification: the traces-specific variable wins over the generic one,
// the signal path is appended to the generic endpoint but not to the
// traces one, header values are URL-decoded, and timeouts are in
// milliseconds.
//
// A malformed value is reported with the variable's name and left unset,
// so the caller keeps its default.
package envconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Settings are the values found in the environment. A nil pointer or an
// empty value means the variable was not set (or was malformed).
type Settings struct {
	// Endpoint is the resolved endpoint URL: for OTLP/HTTP the full request
	// URL, for gRPC the URL whose host is the target. Its scheme says
	// whether to use TLS.
	Endpoint *url.URL
	// EndpointVar names the variable Endpoint came from.
	EndpointVar string
	Headers     map[string]string
	Compression string // "gzip" or "none"
	Timeout     *time.Duration
	Insecure    *bool
	Protocol    string // "grpc" or "http/protobuf"
	// TLS holds the root CAs and client certificate from the certificate
	// variables; nil when none was set.
	TLS *tls.Config
}

// Lookup reads one variable; os.LookupEnv in production.
type Lookup func(name string) (string, bool)

const (
	prefix       = "OTEL_EXPORTER_OTLP_"
	tracesPrefix = "OTEL_EXPORTER_OTLP_TRACES_"
	tracesPath   = "/v1/traces"
)

// Read returns the settings found through lookup (os.LookupEnv when nil),
// and an error per malformed variable, joined.
func Read(lookup Lookup) (Settings, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var s Settings
	var errs []error
	get := func(name string) (string, string, bool) {
		if v, ok := lookup(tracesPrefix + name); ok && strings.TrimSpace(v) != "" {
			return tracesPrefix + name, strings.TrimSpace(v), true
		}
		if v, ok := lookup(prefix + name); ok && strings.TrimSpace(v) != "" {
			return prefix + name, strings.TrimSpace(v), true
		}
		return "", "", false
	}

	if name, v, ok := get("PROTOCOL"); ok {
		switch v {
		case "grpc", "http/protobuf", "http/json":
			s.Protocol = v
		default:
			errs = append(errs, fmt.Errorf("envconfig: %s=%q: unsupported protocol (want grpc, http/protobuf or http/json)", name, v))
		}
	}
	if name, v, ok := get("ENDPOINT"); ok {
		u, err := url.Parse(v)
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the URL, credentials included
		}
		switch {
		case !strings.Contains(v, "://"):
			// "collector:4318" parses as scheme "collector", and
			// "127.0.0.1:4318" not at all: say what to write instead.
			errs = append(errs, fmt.Errorf("envconfig: %s=%q is not a URL: it needs a scheme; write %q (plaintext) or %q (TLS); ignored",
				name, noScheme(v), "http://"+noScheme(v), "https://"+noScheme(v)))
		case err != nil:
			errs = append(errs, fmt.Errorf("envconfig: %s: %w", name, err))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("envconfig: %s=%q: want an http or https URL", name, redact(u)))
		case u.Host == "":
			errs = append(errs, fmt.Errorf("envconfig: %s=%q: no host", name, redact(u)))
		default:
			if name == prefix+"ENDPOINT" {
				// The generic endpoint is a base URL: the signal path is
				// appended to it.
				u.Path = path.Join("/", u.Path, tracesPath)
			} else if u.Path == "" {
				// The traces endpoint is used as is, "/" for no path.
				u.Path = "/"
			}
			s.Endpoint, s.EndpointVar = u, name
		}
	}
	if name, v, ok := get("HEADERS"); ok {
		h, err := parseHeaders(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("envconfig: %s: %w", name, err))
		} else {
			s.Headers = h
		}
	}
	if name, v, ok := get("COMPRESSION"); ok {
		switch v {
		case "gzip", "none":
			s.Compression = v
		default:
			errs = append(errs, fmt.Errorf("envconfig: %s=%q: want gzip or none", name, v))
		}
	}
	if name, v, ok := get("TIMEOUT"); ok {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			errs = append(errs, fmt.Errorf("envconfig: %s=%q: want a non-negative number of milliseconds", name, v))
		} else {
			d := time.Duration(ms) * time.Millisecond
			s.Timeout = &d
		}
	}
	if name, v, ok := get("INSECURE"); ok {
		b, err := strconv.ParseBool(strings.ToLower(v))
		if err != nil {
			errs = append(errs, fmt.Errorf("envconfig: %s=%q: want true or false", name, v))
		} else {
			s.Insecure = &b
		}
	}

	var tlsCfg tls.Config
	haveTLS := false
	if name, v, ok := get("CERTIFICATE"); ok {
		pool, err := readCertPool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("envconfig: %s: %w", name, err))
		} else {
			tlsCfg.RootCAs, haveTLS = pool, true
		}
	}
	certName, certFile, haveCert := get("CLIENT_CERTIFICATE")
	keyName, keyFile, haveKey := get("CLIENT_KEY")
	switch {
	case haveCert && haveKey:
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("envconfig: %s, %s: %w", certName, keyName, err))
		} else {
			tlsCfg.Certificates, haveTLS = []tls.Certificate{cert}, true
		}
	case haveCert:
		errs = append(errs, fmt.Errorf("envconfig: %s is set without %sCLIENT_KEY", certName, strings.TrimSuffix(certName, "CLIENT_CERTIFICATE")))
	case haveKey:
		errs = append(errs, fmt.Errorf("envconfig: %s is set without %sCLIENT_CERTIFICATE", keyName, strings.TrimSuffix(keyName, "CLIENT_KEY")))
	}
	if haveTLS {
		s.TLS = &tlsCfg
	}
	return s, errors.Join(errs...)
}

// parseHeaders reads "key1=value1,key2=value2" with URL-encoded values (the
// W3C Baggage format the specification refers to). Errors never quote a
// value: header values are credentials.
func parseHeaders(v string) (map[string]string, error) {
	h := make(map[string]string)
	for i, pair := range strings.Split(v, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, val, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("entry %d is not key=value", i+1)
		}
		key, err := url.PathUnescape(k)
		if err != nil || !httpguts.ValidHeaderFieldName(key) {
			// A malformed entry may be a credential written the wrong
			// way ("Authorization: Basic …"): never quote it.
			return nil, fmt.Errorf("entry %d does not start with a valid header name followed by '=' (write name=url-encoded-value)", i+1)
		}
		value, err := url.PathUnescape(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("entry %d (key %q) has an invalid URL-encoded value", i+1, key)
		}
		if !httpguts.ValidHeaderFieldValue(value) {
			return nil, fmt.Errorf("entry %d (key %q) has a value with control characters", i+1, key)
		}
		h[key] = value
	}
	return h, nil
}

func readCertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

func redact(u *url.URL) string { return u.Redacted() }

// noScheme returns an endpoint written without scheme, with any user
// information before an '@' hidden.
func noScheme(v string) string {
	if i := strings.LastIndex(v, "@"); i >= 0 {
		return "xxxxx@" + v[i+1:]
	}
	return v
}
