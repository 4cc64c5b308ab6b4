package envconfig

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// fuzzVars are the variables FuzzRead sets from its string arguments, in
// their order: the generic ones, then the traces ones.
var fuzzVars = []string{"PROTOCOL", "ENDPOINT", "HEADERS", "COMPRESSION", "TIMEOUT", "INSECURE"}

// fuzzFiles are the file variables, set to a file holding the fuzzed PEM
// bytes (or to a path where there is none) by the bits of FuzzRead's
// files argument.
var fuzzFiles = []string{
	prefix + "CERTIFICATE", tracesPrefix + "CERTIFICATE",
	prefix + "CLIENT_CERTIFICATE", prefix + "CLIENT_KEY",
	tracesPrefix + "CLIENT_CERTIFICATE", tracesPrefix + "CLIENT_KEY",
}

// errorTexts are the fixed parts of Read's and Endpoint's messages: a
// header value found in one of them is not taken for quoted.
var errorTexts = []string{
	"envconfig: ", "unsupported protocol (want grpc, http/protobuf or http/json)", "want gzip or none",
	"want a non-negative number of milliseconds", "want at most 9223372036854 milliseconds", "want true or false", "is set without",
	"is not key=value", "does not start with a valid header name followed by '=' (write name=url-encoded-value)",
	"has an invalid URL-encoded value", "has a value with control characters",
	"is not a URL: it needs a scheme; write", "(plaintext) or", "(TLS); ignored", "xxxxx@",
	"want an http or https URL (a gRPC target such as dns:///host:port or unix:///path is for the grpc protocol only)",
	"gRPC has no resolver for the scheme", "(want an http or https URL, or a gRPC target such as dns:///host:port or unix:///path)",
	"a gRPC target is for the grpc protocol only; for OTLP/HTTP write an http or https URL; ignored",
	"no host", "holds no PEM certificate", "tls: ", "x509: ", "open ", "no such file or directory",
}

// secrets returns what of a HEADERS variable's value may be a
// credential, at least 8 bytes long: the whole value, each entry but a
// valid header name, each value as written and decoded, and an entry
// without '=' whole.
func secrets(v string) []string {
	var out []string
	add := func(s string) {
		if s = strings.TrimSpace(s); len(s) >= 8 {
			out = append(out, s)
		}
	}
	add(v)
	for _, pair := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(pair, "=")
		if key, err := url.PathUnescape(strings.TrimSpace(k)); err != nil || !httpguts.ValidHeaderFieldName(key) || !ok {
			add(pair)
			continue
		}
		add(val)
		if dec, err := url.PathUnescape(strings.TrimSpace(val)); err == nil {
			add(dec)
		}
	}
	return out
}

// FuzzRead reads arbitrary values of every variable Read looks up, and
// resolves the endpoint for OTLP/HTTP and for gRPC. Neither may panic;
// every error names its variable and never quotes what of a HEADERS
// value may be a credential; the headers returned are valid HTTP header
// names and values; the other settings are among those allowed; and an
// endpoint resolved is an http or https URL with a host, or, for gRPC
// only, a target name of a scheme gRPC knows.
func FuzzRead(f *testing.F) {
	certPEM, keyPEM := selfSigned(f)
	pair := append(certPEM, keyPEM...)

	type vars [12]string // fuzzVars, generic then traces
	for _, tc := range []struct {
		v     vars
		pem   []byte
		files byte
	}{
		{vars{}, nil, 0},
		{vars{"grpc", "http://c:4318", "api-key=a%20b%2Cc,x=1", "gzip", "1500", "TRUE",
			"", "", "api-key=traces", "none", "2500", ""}, nil, 0},
		{vars{"http/xml", "collector:4318", "token=%zz-secret", "zstd", "10s", "maybe"}, nil, 1<<0 | 1<<3 | 1<<6},
		{vars{"grpc", "http://good.example:4318", "x-api-key=k1", "gzip", "1500", "true",
			"thrift", "collector:4318", "oops", "zstd", "2s", "maybe"}, nil, 0},
		{vars{1: "user:pw@collector:4318"}, nil, 0},
		{vars{1: "https://c/otlp/", 7: "http://c:4318"}, pair, 1<<1 | 1<<4 | 1<<5},
		{vars{1: "dns:///collector:4317", 7: "unix:///run/otlp.sock"}, pair, 1<<0 | 1<<2 | 1<<3},
		{vars{1: "passthrough:///10.0.0.1:4317", 7: "foo:///x"}, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 1 << 1},
		{vars{1: "dns://8.8.8.8/collector:4317", 7: "http://u:p@h:1/p?q#f"}, nil, 0},
		{vars{2: "Authorization=Basic%20dXNlcjpwYXNzd29yZA==", 8: "Authorization: Basic dXNlcjpwYXNzd29yZA=="}, nil, 0},
		{vars{2: "k=v%0Aalue-secret", 8: "a=1,,b=2, =x"}, nil, 0},
	} {
		v := tc.v
		f.Add(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], tc.pem, tc.files)
	}
	f.Fuzz(func(t *testing.T, p, e, h, c, to, in, tp, te, th, tc, tto, tin string, pemData []byte, files byte) {
		m := map[string]string{}
		for i, v := range []string{p, e, h, c, to, in, tp, te, th, tc, tto, tin} {
			name := prefix + fuzzVars[i%6]
			if i >= 6 {
				name = tracesPrefix + fuzzVars[i%6]
			}
			if v != "" {
				m[name] = v
			}
		}
		dir := t.TempDir()
		file := filepath.Join(dir, "pem")
		if files&(1<<6) != 0 {
			file = filepath.Join(dir, "missing")
		} else if err := os.WriteFile(file, pemData, 0o600); err != nil {
			t.Fatal(err)
		}
		for i, name := range fuzzFiles {
			if files&(1<<i) != 0 {
				m[name] = file
			}
		}

		s, err := Read(env(m))
		httpEP, httpErr := s.Endpoint(false, knownScheme)
		grpcEP, grpcErr := s.Endpoint(true, knownScheme)
		all := errors.Join(err, httpErr, grpcErr)

		if all != nil {
			for _, line := range strings.Split(all.Error(), "\n") {
				if !strings.HasPrefix(line, "envconfig: "+prefix) {
					t.Fatalf("an error that does not name its variable: %q", line)
				}
			}
			public := strings.Join(errorTexts, "\n") + "\n" + file
			for name, v := range m {
				public += "\n" + name
				if !strings.HasSuffix(name, "HEADERS") {
					public += "\n" + v
				}
			}
			for k := range s.Headers {
				public += "\n" + k
			}
			for _, hv := range []string{h, th} {
				for _, pair := range strings.Split(hv, ",") {
					k, _, _ := strings.Cut(pair, "=")
					if key, err := url.PathUnescape(strings.TrimSpace(k)); err == nil && httpguts.ValidHeaderFieldName(key) {
						public += "\n" + key // named in errors: a name is no secret
					}
				}
			}
			for _, hv := range []string{h, th} {
				for _, secret := range secrets(hv) {
					if strings.Contains(all.Error(), secret) && !strings.Contains(public, secret) {
						t.Fatalf("the error quotes %q of a HEADERS value: %v", secret, all)
					}
				}
			}
		}

		for k, v := range s.Headers {
			if !httpguts.ValidHeaderFieldName(k) || !httpguts.ValidHeaderFieldValue(v) || v != strings.TrimSpace(v) {
				t.Fatalf("header %q: %q is not a valid HTTP header", k, v)
			}
		}
		switch s.Protocol {
		case "", "grpc", "http/protobuf", "http/json":
		default:
			t.Fatalf("protocol %q", s.Protocol)
		}
		if s.Compression != "" && s.Compression != "gzip" && s.Compression != "none" {
			t.Fatalf("compression %q", s.Compression)
		}
		if s.Timeout != nil && *s.Timeout < 0 {
			t.Fatalf("timeout %v", *s.Timeout)
		}

		for _, ep := range []Endpoint{httpEP, grpcEP} {
			if ep.URL == nil {
				if ep.Var != "" || ep.Target != "" {
					t.Fatalf("no URL, but %+v", ep)
				}
				continue
			}
			raw, ok := m[ep.Var]
			if !ok || (ep.Var != prefix+"ENDPOINT" && ep.Var != tracesPrefix+"ENDPOINT") {
				t.Fatalf("endpoint from %q, which was not set", ep.Var)
			}
			switch u := ep.URL; u.Scheme {
			case "http", "https":
				if u.Host == "" || u.Hostname() == "" || ep.Target != "" {
					t.Fatalf("endpoint %q from %s=%q has no host (%+v)", u, ep.Var, raw, ep)
				}
			default:
				if ep == httpEP || !knownScheme(u.Scheme) || ep.Target != strings.TrimSpace(raw) {
					t.Fatalf("target %+v from %s=%q", ep, ep.Var, raw)
				}
			}
		}
	})
}
