// Package envconfig reads the OTLP exporter settings from the standard
// OTEL_EXPORTER_OTLP_* environment variables, following the OpenTelemetry
// specification: the traces-specific variable wins over the generic one,
// the signal path is appended to the generic endpoint but not to the
// traces one, header values are URL-decoded, and timeouts are in
// milliseconds.
//
// A malformed value is reported with the variable's name and ignored: a
// malformed traces-specific variable leaves the generic one in force, and a
// malformed generic one the caller's default.
//
// The endpoint reads differently for OTLP/gRPC, where a URL whose scheme is
// neither http nor https ("unix:///run/otlp.sock", "dns:///collector:4317")
// is a gRPC target name, and the protocol may be chosen after the
// environment is read: Read keeps the endpoint variables as they are, and
// Settings.Endpoint resolves them for a protocol.
package envconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
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
	Headers     map[string]string
	Compression string // "gzip" or "none"
	Timeout     *time.Duration
	Insecure    *bool
	Protocol    string // "grpc" or "http/protobuf"
	// TLS holds the root CAs and client certificate from the certificate
	// variables; nil when none was set.
	TLS *tls.Config

	// endpoints are the endpoint variables set, the traces one first, for
	// Endpoint to resolve.
	endpoints []variable
}

type variable struct{ name, value string }

// Endpoint is an endpoint read from the environment.
type Endpoint struct {
	// URL is the endpoint URL: for OTLP/HTTP the full request URL, for
	// gRPC the URL whose host is the target. Its scheme says whether to
	// use TLS. Nil when no endpoint variable was set (or none was valid).
	URL *url.URL
	// Var names the variable URL came from.
	Var string
	// Target, for gRPC only, is a gRPC target name to use as it is
	// written: the value of a variable whose scheme is neither http nor
	// https. Empty otherwise.
	Target string
}

// Lookup reads one variable; os.LookupEnv in production.
type Lookup func(name string) (string, bool)

const (
	prefix       = "OTEL_EXPORTER_OTLP_"
	tracesPrefix = "OTEL_EXPORTER_OTLP_TRACES_"
	tracesPath   = "/v1/traces"
)

// Read returns the settings found through lookup (os.LookupEnv when nil),
// and an error per malformed variable, joined; the endpoint variables are
// checked by Settings.Endpoint.
func Read(lookup Lookup) (Settings, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var s Settings
	var errs []error
	// each calls parse with the traces variable of that name, then with
	// the generic one, until one is set and parses: a malformed traces
	// variable is reported and the generic one used, as if it were unset.
	each := func(name string, parse func(name, v string) error) {
		for _, n := range []string{tracesPrefix + name, prefix + name} {
			v, ok := lookup(n)
			if v = strings.TrimSpace(v); !ok || v == "" {
				continue
			}
			err := parse(n, v)
			if err == nil {
				return
			}
			errs = append(errs, err)
		}
	}

	each("PROTOCOL", func(name, v string) error {
		switch v {
		case "grpc", "http/protobuf", "http/json":
			s.Protocol = v
			return nil
		}
		return fmt.Errorf("envconfig: %s=%q: unsupported protocol (want grpc, http/protobuf or http/json)", name, v)
	})
	for _, n := range []string{tracesPrefix + "ENDPOINT", prefix + "ENDPOINT"} {
		if v, ok := lookup(n); ok && strings.TrimSpace(v) != "" {
			s.endpoints = append(s.endpoints, variable{n, strings.TrimSpace(v)})
		}
	}
	each("HEADERS", func(name, v string) error {
		h, err := ParseHeaders(v)
		if err != nil {
			return fmt.Errorf("envconfig: %s: %w", name, err)
		}
		s.Headers = h
		return nil
	})
	each("COMPRESSION", func(name, v string) error {
		switch v {
		case "gzip", "none":
			s.Compression = v
			return nil
		}
		return fmt.Errorf("envconfig: %s=%q: want gzip or none", name, v)
	})
	each("TIMEOUT", func(name, v string) error {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			return fmt.Errorf("envconfig: %s=%q: want a non-negative number of milliseconds", name, v)
		}
		if ms > maxTimeoutMillis {
			// As a time.Duration it would wrap around.
			return fmt.Errorf("envconfig: %s=%q: want at most %d milliseconds", name, v, maxTimeoutMillis)
		}
		d := time.Duration(ms) * time.Millisecond
		s.Timeout = &d
		return nil
	})
	each("INSECURE", func(name, v string) error {
		b, err := strconv.ParseBool(strings.ToLower(v))
		if err != nil {
			return fmt.Errorf("envconfig: %s=%q: want true or false", name, v)
		}
		s.Insecure = &b
		return nil
	})

	var tlsCfg tls.Config
	haveTLS := false
	each("CERTIFICATE", func(name, v string) error {
		pool, err := readCertPool(v)
		if err != nil {
			return fmt.Errorf("envconfig: %s: %w", name, err)
		}
		tlsCfg.RootCAs, haveTLS = pool, true
		return nil
	})
	// The client certificate and key are read as a pair: the traces pair,
	// or else the generic one.
	for _, p := range []string{tracesPrefix, prefix} {
		cert, set, err := clientCert(lookup, p)
		if !set {
			continue
		}
		if err == nil {
			tlsCfg.Certificates, haveTLS = []tls.Certificate{cert}, true
			break
		}
		errs = append(errs, err)
	}
	if haveTLS {
		s.TLS = &tlsCfg
	}
	return s, errors.Join(errs...)
}

// Endpoint resolves the endpoint variables, the traces one over the
// generic one, and returns an error per variable found malformed on the
// way, joined; a malformed variable is ignored, as if unset.
//
// resolves says whether gRPC has a resolver for a scheme. For OTLP/HTTP
// (grpc false) an endpoint is an http or https URL, and one of such a
// scheme is said to be a gRPC target. For OTLP/gRPC a URL of such a scheme
// other than http and https is a gRPC target name, returned as it is
// written in Target, as the stock exporter takes it.
func (s Settings) Endpoint(grpc bool, resolves func(scheme string) bool) (Endpoint, error) {
	var errs []error
	for _, ev := range s.endpoints {
		u, err := parseEndpoint(ev.name, ev.value, grpc, resolves)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return Endpoint{URL: u, Var: ev.name, Target: ev.value}, errors.Join(errs...)
		}
		if ev.name == prefix+"ENDPOINT" {
			// The generic endpoint is a base URL: the signal path is
			// appended to it.
			u.Path = path.Join("/", u.Path, tracesPath)
		} else if u.Path == "" {
			// The traces endpoint is used as is, "/" for no path.
			u.Path = "/"
		}
		return Endpoint{URL: u, Var: ev.name}, errors.Join(errs...)
	}
	return Endpoint{}, errors.Join(errs...)
}

// parseEndpoint checks the endpoint URL v of the variable name; grpc and
// resolves as for Endpoint.
func parseEndpoint(name, v string, grpc bool, resolves func(string) bool) (*url.URL, error) {
	u, err := url.Parse(v)
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // url.Error quotes the URL, credentials included
	}
	if !strings.Contains(v, "://") {
		return parseBare(name, v, u, err, grpc, resolves)
	}
	web := u != nil && (u.Scheme == "http" || u.Scheme == "https")
	switch {
	case err != nil:
		return nil, fmt.Errorf("envconfig: %s: %w", name, err)
	case !web && !grpc:
		return nil, fmt.Errorf("envconfig: %s=%q: want an http or https URL (a gRPC target such as dns:///host:port or unix:///path is for the grpc protocol only)", name, redact(u))
	case !web && !resolves(u.Scheme):
		return nil, fmt.Errorf("envconfig: %s=%q: gRPC has no resolver for the scheme %q (want an http or https URL, or a gRPC target such as dns:///host:port or unix:///path)", name, redact(u), u.Scheme)
	case web && u.Hostname() == "":
		// A gRPC target may have none: unix:///path. A port alone
		// ("http://:4318", as "http://${HOST}:4318" reads with HOST
		// unset) is no host either: it would reach this machine.
		return nil, fmt.Errorf("envconfig: %s=%q: no host", name, redact(u))
	}
	return u, nil
}

// parseBare is parseEndpoint for v written without "//", which url.Parse
// read as u (or failed to, with err): a gRPC target without an authority
// (unix:/run/otlp.sock, unix:relative.sock, dns:collector:4317), or
// host:port written without a scheme ("collector:4318" reads as scheme
// "collector", "127.0.0.1:4318" not at all).
func parseBare(name, v string, u *url.URL, err error, grpc bool, resolves func(string) bool) (*url.URL, error) {
	other := err == nil && u.Scheme != "http" && u.Scheme != "https"
	switch {
	case other && grpc && resolves(u.Scheme) && (u.Opaque != "" || u.Path != ""):
		return u, nil
	case other && grpc && u.Opaque != "" && !isPort(u.Opaque):
		return nil, fmt.Errorf("envconfig: %s=%q: gRPC has no resolver for the scheme %q (want an http or https URL, or a gRPC target such as dns:///host:port or unix:///path)", name, noScheme(v), u.Scheme)
	case other && !grpc && u.Scheme != "" && resolves(u.Scheme) && !isPort(u.Opaque):
		return nil, fmt.Errorf("envconfig: %s=%q: a gRPC target is for the grpc protocol only; for OTLP/HTTP write an http or https URL; ignored", name, noScheme(v))
	}
	return nil, fmt.Errorf("envconfig: %s=%q is not a URL: it needs a scheme; write %q (plaintext) or %q (TLS); ignored",
		name, noScheme(v), "http://"+noScheme(v), "https://"+noScheme(v))
}

// maxTimeoutMillis is the longest timeout a time.Duration holds, in
// milliseconds (about 292 years).
const maxTimeoutMillis = math.MaxInt64 / int64(time.Millisecond)

// isPort reports whether opaque, the rest of "host:…", is a port, with a
// path or not.
func isPort(opaque string) bool {
	port, _, _ := strings.Cut(opaque, "/")
	return port != "" && strings.IndexFunc(port, func(r rune) bool { return r < '0' || r > '9' }) < 0
}

// clientCert reads the client certificate and key variables of one prefix:
// set reports whether either is set, err what is wrong with them.
func clientCert(lookup Lookup, p string) (cert tls.Certificate, set bool, err error) {
	certName, keyName := p+"CLIENT_CERTIFICATE", p+"CLIENT_KEY"
	certFile, _ := lookup(certName)
	keyFile, _ := lookup(keyName)
	certFile, keyFile = strings.TrimSpace(certFile), strings.TrimSpace(keyFile)
	switch {
	case certFile == "" && keyFile == "":
		return cert, false, nil
	case keyFile == "":
		return cert, true, fmt.Errorf("envconfig: %s is set without %s", certName, keyName)
	case certFile == "":
		return cert, true, fmt.Errorf("envconfig: %s is set without %s", keyName, certName)
	}
	cert, err = tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		err = fmt.Errorf("envconfig: %s, %s: %w", certName, keyName, err)
	}
	return cert, true, err
}

// ParseHeaders reads "key1=value1,key2=value2" with URL-encoded values (the
// W3C Baggage format the specification refers to), as OTEL_EXPORTER_OTLP_HEADERS
// and the configuration file's headers_list hold them. Errors never quote a
// value: header values are credentials.
func ParseHeaders(v string) (map[string]string, error) {
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
		value = strings.TrimSpace(value) // HTTP trims header values
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
// information hidden.
func noScheme(v string) string { return HideUserinfo(v) }

// HideUserinfo returns an endpoint for an error message: anything before
// its last '@', user information and so credentials, is replaced.
func HideUserinfo(v string) string {
	if i := strings.LastIndex(v, "@"); i >= 0 {
		return "xxxxx@" + v[i+1:]
	}
	return v
}
