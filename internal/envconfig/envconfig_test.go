package envconfig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEndpointRules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		vars    map[string]string
		want    string
		wantVar string
	}{
		{"generic appends signal path", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "http://c:4318/v1/traces", "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"generic with base path", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c/otlp/"}, "https://c/otlp/v1/traces", "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"traces used as is", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/custom"}, "http://c:4318/custom", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{"traces without path gets root", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318"}, "http://c:4318/", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{"traces wins", map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://generic:4318",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4318/v1/traces",
		}, "http://traces:4318/v1/traces", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Read(env(tc.vars))
			if err != nil {
				t.Fatal(err)
			}
			for _, grpc := range []bool{false, true} {
				ep, err := s.Endpoint(grpc, knownScheme)
				if err != nil || ep.URL == nil || ep.URL.String() != tc.want || ep.Var != tc.wantVar || ep.Target != "" {
					t.Fatalf("got %+v (%v), want %s from %s", ep, err, tc.want, tc.wantVar)
				}
			}
		})
	}
}

func TestValues(t *testing.T) {
	s, err := Read(env(map[string]string{
		"OTEL_EXPORTER_OTLP_HEADERS":            "api-key=a%20b%2Cc,x=1",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS":     "api-key=traces",
		"OTEL_EXPORTER_OTLP_COMPRESSION":        "gzip",
		"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT":     "2500",
		"OTEL_EXPORTER_OTLP_INSECURE":           "TRUE",
		"OTEL_EXPORTER_OTLP_PROTOCOL":           "grpc",
		"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "none",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Headers, map[string]string{"api-key": "traces"}) {
		t.Errorf("headers %v: the traces variable must replace the generic one", s.Headers)
	}
	if s.Compression != "none" || s.Protocol != "grpc" || *s.Timeout != 2500*time.Millisecond || !*s.Insecure {
		t.Errorf("got %+v", s)
	}
	s, err = Read(env(map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "api-key=a%20b%2Cc, x = 1 "}))
	if err != nil || !reflect.DeepEqual(s.Headers, map[string]string{"api-key": "a b,c", "x": "1"}) {
		t.Errorf("URL-decoded headers: got %v, %v", s.Headers, err)
	}
}

func TestMalformedValuesNameTheVariable(t *testing.T) {
	s, err := Read(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":        "collector:4318",
		"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT":  "10s",
		"OTEL_EXPORTER_OTLP_COMPRESSION":     "zstd",
		"OTEL_EXPORTER_OTLP_INSECURE":        "maybe",
		"OTEL_EXPORTER_OTLP_PROTOCOL":        "http/xml",
		"OTEL_EXPORTER_OTLP_HEADERS":         "token=%zz-secret",
		"OTEL_EXPORTER_OTLP_CERTIFICATE":     "/nonexistent/ca.pem",
		"OTEL_EXPORTER_OTLP_CLIENT_KEY":      "/nonexistent/key.pem",
		"OTEL_EXPORTER_OTLP_TRACES_INSECURE": "",
	}))
	ep, epErr := s.Endpoint(false, knownScheme)
	err = errors.Join(err, epErr)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, name := range []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_COMPRESSION",
		"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS",
		"OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_KEY",
	} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error quotes a header value: %v", err)
	}
	if ep.URL != nil || s.Timeout != nil || s.Compression != "" || s.Insecure != nil || s.Protocol != "" || s.Headers != nil || s.TLS != nil {
		t.Errorf("malformed values must be left unset: %+v", s)
	}
}

// A timeout too long for a time.Duration is malformed, not wrapped into
// a negative or tiny one; the generic variable is then in force.
func TestTimeoutOverflow(t *testing.T) {
	for _, v := range []string{"9223372036855", "18446744073709551", "9223372036854775807"} {
		s, err := Read(env(map[string]string{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": v, "OTEL_EXPORTER_OTLP_TIMEOUT": "1500"}))
		if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") {
			t.Errorf("%s: error %v, want it named", v, err)
		}
		if s.Timeout == nil || *s.Timeout != 1500*time.Millisecond {
			t.Errorf("%s: timeout %v, want the generic 1.5s", v, s.Timeout)
		}
	}
	s, err := Read(env(map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "9223372036854"}))
	if err != nil || s.Timeout == nil || *s.Timeout <= 0 {
		t.Errorf("the longest timeout: %v, %v", s.Timeout, err)
	}
}

// selfSigned returns the PEM of a self-signed CA certificate and of its
// key.
func selfSigned(tb testing.TB) (cert, key []byte) {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func TestCertificates(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)

	s, err := Read(env(map[string]string{
		"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE":        certFile,
		"OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE": certFile,
		"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY":         keyFile,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if s.TLS == nil || s.TLS.RootCAs == nil || len(s.TLS.Certificates) != 1 {
		t.Fatalf("got %+v", s.TLS)
	}

	// A traces pair that is incomplete leaves the generic pair in force.
	s, err = Read(env(map[string]string{
		"OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE": certFile,
		"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE":        certFile,
		"OTEL_EXPORTER_OTLP_CLIENT_KEY":                keyFile,
	}))
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE is set without OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY") {
		t.Errorf("incomplete traces pair not reported: %v", err)
	}
	if s.TLS == nil || len(s.TLS.Certificates) != 1 {
		t.Fatalf("generic pair not used: %+v", s.TLS)
	}
}

func TestEndpointWithoutSchemeSaysWhatToWrite(t *testing.T) {
	for _, v := range []string{"127.0.0.1:4318", "collector:4318", "user:pw@collector:4318"} {
		s, _ := Read(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": v}))
		_, err := s.Endpoint(false, knownScheme)
		host := v
		if i := strings.LastIndex(v, "@"); i >= 0 {
			host = "xxxxx@" + v[i+1:]
		}
		want := `OTEL_EXPORTER_OTLP_ENDPOINT="` + host + `" is not a URL: it needs a scheme; write "http://` + host + `" (plaintext) or "https://` + host + `" (TLS)`
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "pw") {
			t.Errorf("%s: got %v", v, err)
		}
	}
}

// An http or https endpoint needs a host name: a port alone, as a shell
// writes "http://${HOST}:4318" with HOST unset, is reported and ignored,
// and the generic variable is in force.
func TestEndpointWithoutHostIsIgnored(t *testing.T) {
	for _, v := range []string{"http://:4318", "https://:443/v1/traces", "http://user@:4318", "http:///v1/traces"} {
		s, err := Read(env(map[string]string{
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": v,
			"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://c:4318",
		}))
		if err != nil {
			t.Fatal(err)
		}
		for _, grpc := range []bool{false, true} {
			ep, err := s.Endpoint(grpc, knownScheme)
			if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || !strings.Contains(err.Error(), "no host") {
				t.Errorf("%s: error %v, want the traces variable reported without a host", v, err)
			}
			if ep.URL == nil || ep.URL.String() != "http://c:4318/v1/traces" {
				t.Errorf("%s: resolved %v, want the generic endpoint", v, ep.URL)
			}
		}
	}
}

// A malformed traces variable is ignored as if unset: the generic one of
// the same setting stays in force.
func TestMalformedTracesVariableLeavesTheGenericOne(t *testing.T) {
	s, err := Read(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":           "http://good.example:4318",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":    "collector:4318",
		"OTEL_EXPORTER_OTLP_HEADERS":            "x-api-key=k1",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS":     "oops",
		"OTEL_EXPORTER_OTLP_TIMEOUT":            "1500",
		"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT":     "2s",
		"OTEL_EXPORTER_OTLP_COMPRESSION":        "gzip",
		"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "zstd",
		"OTEL_EXPORTER_OTLP_INSECURE":           "true",
		"OTEL_EXPORTER_OTLP_TRACES_INSECURE":    "maybe",
		"OTEL_EXPORTER_OTLP_PROTOCOL":           "grpc",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL":    "thrift",
	}))
	ep, epErr := s.Endpoint(false, knownScheme)
	err = errors.Join(err, epErr)
	for _, name := range []string{"TRACES_ENDPOINT", "TRACES_HEADERS", "TRACES_TIMEOUT", "TRACES_COMPRESSION", "TRACES_INSECURE", "TRACES_PROTOCOL"} {
		if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_"+name) {
			t.Errorf("malformed OTEL_EXPORTER_OTLP_%s not reported: %v", name, err)
		}
	}
	if ep.URL == nil || ep.URL.String() != "http://good.example:4318/v1/traces" || ep.Var != "OTEL_EXPORTER_OTLP_ENDPOINT" {
		t.Errorf("endpoint %v from %s, want the generic one", ep.URL, ep.Var)
	}
	if !reflect.DeepEqual(s.Headers, map[string]string{"x-api-key": "k1"}) {
		t.Errorf("headers %v, want the generic ones", s.Headers)
	}
	if s.Timeout == nil || *s.Timeout != 1500*time.Millisecond || s.Compression != "gzip" ||
		s.Insecure == nil || !*s.Insecure || s.Protocol != "grpc" {
		t.Errorf("got %+v, want the generic settings", s)
	}
}

// knownScheme stands for gRPC's resolver registry.
func knownScheme(scheme string) bool {
	return scheme == "dns" || scheme == "unix" || scheme == "passthrough"
}

// With gRPC, an endpoint whose scheme gRPC has a resolver for is a target
// name, used as written, the traces variable over the generic one. With
// OTLP/HTTP such a variable is reported and ignored, and the next one in
// precedence is in force.
func TestGRPCTargets(t *testing.T) {
	const (
		traces  = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
		generic = "OTEL_EXPORTER_OTLP_ENDPOINT"
	)
	for _, tc := range []struct {
		name          string
		vars          map[string]string
		grpc, http    string // Target or URL resolved
		grpcVar       string
		grpcErr, hErr []string // variables reported
	}{
		{"generic unix", map[string]string{generic: "unix:///run/otlp.sock"},
			"unix:///run/otlp.sock", "", generic, nil, []string{generic}},
		{"traces dns over generic http", map[string]string{traces: "dns:///collector:4317", generic: "http://fallback:4318"},
			"dns:///collector:4317", "http://fallback:4318/v1/traces", traces, nil, []string{traces}},
		{"traces http over generic target", map[string]string{traces: "http://c:4317", generic: "dns:///collector:4317"},
			"http://c:4317/", "http://c:4317/", traces, nil, nil},
		{"unknown scheme leaves the generic one", map[string]string{traces: "foo:///x", generic: "passthrough:///10.0.0.1:4317"},
			"passthrough:///10.0.0.1:4317", "", generic, []string{traces}, []string{traces, generic}},
		{"dns with an authority", map[string]string{generic: "dns://8.8.8.8/collector:4317"},
			"dns://8.8.8.8/collector:4317", "", generic, nil, []string{generic}},
		{"unix without an authority", map[string]string{traces: "unix:/run/otlp.sock", generic: "http://fallback:4318"},
			"unix:/run/otlp.sock", "http://fallback:4318/v1/traces", traces, nil, []string{traces}},
		{"unix relative", map[string]string{generic: "unix:otlp.sock"},
			"unix:otlp.sock", "", generic, nil, []string{generic}},
		{"dns without an authority", map[string]string{generic: "dns:collector:4317"},
			"dns:collector:4317", "", generic, nil, []string{generic}},
		{"host:port is not a target", map[string]string{traces: "collector:4317", generic: "unix:/run/otlp.sock"},
			"unix:/run/otlp.sock", "", generic, []string{traces}, []string{traces, generic}},
		{"unknown scheme without an authority", map[string]string{traces: "bogus:127.0.0.1:4317", generic: "dns:collector:4317"},
			"dns:collector:4317", "", generic, []string{traces}, []string{traces, generic}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Read(env(tc.vars))
			if err != nil {
				t.Fatal(err)
			}
			check := func(proto string, grpc bool, want string, reported []string) {
				t.Helper()
				ep, err := s.Endpoint(grpc, knownScheme)
				got := ep.Target
				if got == "" && ep.URL != nil {
					got = ep.URL.String()
				}
				if got != want {
					t.Errorf("%s: resolved %q from %s, want %q", proto, got, ep.Var, want)
				}
				if proto == "grpc" && ep.Var != tc.grpcVar {
					t.Errorf("%s: from %s, want %s", proto, ep.Var, tc.grpcVar)
				}
				if (err != nil) != (len(reported) > 0) {
					t.Errorf("%s: error %v, want %v reported", proto, err, reported)
				}
				for _, name := range reported {
					if err == nil || !strings.Contains(err.Error(), name+"=") {
						t.Errorf("%s: %s not reported: %v", proto, name, err)
					}
				}
			}
			check("grpc", true, tc.grpc, tc.grpcErr)
			check("http", false, tc.http, tc.hErr)
		})
	}
	for _, v := range []string{"dns:///collector:4317", "unix:/run/otlp.sock", "dns:collector:4317"} {
		s, _ := Read(env(map[string]string{generic: v}))
		if _, err := s.Endpoint(false, knownScheme); err == nil || !strings.Contains(err.Error(), "for the grpc protocol only") {
			t.Errorf("%s with OTLP/HTTP: %v, want it said it is for gRPC", v, err)
		}
	}
	for _, v := range []string{"foo:///x", "foo:127.0.0.1:4317"} {
		s, _ := Read(env(map[string]string{generic: v}))
		if _, err := s.Endpoint(true, knownScheme); err == nil || !strings.Contains(err.Error(), `no resolver for the scheme "foo"`) {
			t.Errorf("%s, an unknown scheme with gRPC: %v", v, err)
		}
	}
	for _, v := range []string{"collector:4317", "collector:4317/v1/traces"} {
		s, _ := Read(env(map[string]string{generic: v}))
		if _, err := s.Endpoint(true, knownScheme); err == nil || !strings.Contains(err.Error(), `write "http://`+v+`"`) {
			t.Errorf("%s with gRPC: %v, want the advice to write a scheme", v, err)
		}
	}
}
