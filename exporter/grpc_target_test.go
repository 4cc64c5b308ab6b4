package exporter

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

// serverAttrs returns the server.address and server.port the self-metrics
// carry; port is -1 when there is none.
func serverAttrs(e *Exporter) (string, int64) {
	set := attribute.NewSet(e.metrics.base...)
	addr, _ := set.Value("server.address")
	port := int64(-1)
	if v, ok := set.Value("server.port"); ok {
		port = v.AsInt64()
	}
	return addr.AsString(), port
}

// A gRPC target name given to WithEndpoint goes to grpc.NewClient as
// written, as with the stock exporter: client-side load balancing
// (dns:/// with a round_robin service config), passthrough and unix
// sockets deliver.
func TestGRPCTargetsDeliver(t *testing.T) {
	tcp := otlptest.NewGRPC(t, nil)
	unix := otlptest.NewGRPCUnix(t, nil)
	_, p, _ := net.SplitHostPort(tcp.Endpoint())
	port, _ := strconv.ParseInt(p, 10, 64)
	sock := strings.TrimPrefix(unix.Endpoint(), "unix://")
	for _, tc := range []struct {
		name   string
		target string
		rcv    *otlptest.GRPC
		opts   []Option
		addr   string
		port   int64
	}{
		{"dns", "dns:///" + tcp.Endpoint(), tcp, []Option{WithServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`)}, "127.0.0.1", port},
		{"passthrough", "passthrough:///" + tcp.Endpoint(), tcp, nil, "127.0.0.1", port},
		{"unix", unix.Endpoint(), unix, nil, sock, -1},
		{"unix, relative form", "unix:" + sock, unix, nil, sock, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.rcv.Spans()
			core, logs := observer.New(zapcore.WarnLevel)
			e := New(append([]Option{WithProtocol(ProtocolGRPC), WithEndpoint(tc.target), WithInsecure(), WithLogger(zap.New(core))}, tc.opts...)...)
			if err := e.ConfigError(); err != nil {
				t.Fatal(err)
			}
			if addr, port := serverAttrs(e); addr != tc.addr || port != tc.port {
				t.Errorf("server.address %q, server.port %d; want %q, %d", addr, port, tc.addr, tc.port)
			}
			if s := exportOnce(t, e); s.Exported != 2 || tc.rcv.Spans()-before != 2 {
				t.Fatalf("got %+v, received %d", s, tc.rcv.Spans()-before)
			}
			if logs.Len() != 0 {
				t.Errorf("logged %v", logs.All())
			}
		})
	}
}

// A target other than a unix socket keeps TLS, and its endpoint is the
// name the server's certificate is checked against.
func TestGRPCTargetOverTLS(t *testing.T) {
	p := newTestPKI(t)
	g := otlptest.NewGRPC(t, nil, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{p.server}})))
	e := New(WithProtocol(ProtocolGRPC), WithEndpoint("dns:///"+g.Endpoint()), WithTLSClientConfig(&tls.Config{RootCAs: p.caPool}), WithLogger(zap.NewNop()))
	if s := exportOnce(t, e); s.Exported != 2 {
		t.Fatalf("got %+v", s)
	}

	// From the environment too: a dns:/// endpoint means TLS.
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "dns:///"+g.Endpoint())
	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", p.caFile)
	if s := exportOnce(t, New(WithLogger(zap.NewNop()))); s.Exported != 2 {
		t.Fatalf("from the environment: got %+v", s)
	}
}

// With gRPC, an endpoint variable holding a target name is the target, as
// with the stock exporter: a unix socket is plaintext, the traces variable
// wins over the generic one, and the protocol may come from an option
// given after the environment is read.
func TestGRPCTargetFromTheEnvironment(t *testing.T) {
	unix := otlptest.NewGRPCUnix(t, nil)
	refused := "http://" + otlptest.RefusedAddr(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		opts []Option
	}{
		{"generic, protocol from the environment",
			map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": unix.Endpoint()}, nil},
		{"generic, protocol from an option",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": unix.Endpoint()}, []Option{WithProtocol(ProtocolGRPC)}},
		{"traces over generic",
			map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": unix.Endpoint(), "OTEL_EXPORTER_OTLP_ENDPOINT": refused},
			[]Option{WithProtocol(ProtocolGRPC)}},
		{"generic, unix: and a path",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "unix:" + strings.TrimPrefix(unix.Endpoint(), "unix://")},
			[]Option{WithProtocol(ProtocolGRPC)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			before := unix.Spans()
			core, logs := observer.New(zapcore.WarnLevel)
			e := New(append(tc.opts, WithLogger(zap.New(core)))...)
			if s := exportOnce(t, e); s.Exported != 2 || unix.Spans()-before != 2 {
				t.Fatalf("got %+v, received %d", s, unix.Spans()-before)
			}
			if logs.Len() != 0 {
				t.Errorf("logged %v", logs.All())
			}
		})
	}
}

// With OTLP/HTTP, an endpoint variable holding a gRPC target is reported
// and ignored, and the next one in precedence is in force; with gRPC, one
// whose scheme gRPC has no resolver for is.
func TestGRPCTargetInTheEnvironmentIgnoredWhereItIsNone(t *testing.T) {
	rcv := otlptest.NewHTTP(t, nil)
	for _, tc := range []struct {
		name, reported string
		env            map[string]string
	}{
		{"OTLP/HTTP", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", map[string]string{
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "dns:///" + rcv.Endpoint(),
			"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://" + rcv.Endpoint(),
		}},
		{"OTLP/HTTP, the protocol from an option", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", map[string]string{
			"OTEL_EXPORTER_OTLP_PROTOCOL":        "grpc",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "dns:///" + rcv.Endpoint(),
			"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://" + rcv.Endpoint(),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			before := rcv.Spans()
			core, logs := observer.New(zapcore.WarnLevel)
			e := New(WithProtocol(ProtocolHTTPProtobuf), WithLogger(zap.New(core)))
			if s := exportOnce(t, e); s.Exported != 2 || rcv.Spans()-before != 2 {
				t.Fatalf("got %+v, received %d: the generic variable is not in force", s, rcv.Spans()-before)
			}
			warned := logs.FilterMessageSnippet("ignoring malformed environment variables").All()
			if len(warned) != 1 || !strings.Contains(warned[0].ContextMap()["error"].(string), tc.reported+"=") {
				t.Fatalf("want a warning naming %s, logged %v", tc.reported, logs.All())
			}
		})
	}

	// Alone, it leaves the default endpoint.
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "dns:///collector:4317")
	c := newConfig(nil)
	if u, err := c.targetURL(); err != nil || u.String() != "https://localhost:4318/v1/traces" ||
		c.envErrs == nil || !strings.Contains(c.envErrs.Error(), "for the grpc protocol only") {
		t.Fatalf("got %v (%v), reported %v", u, err, c.envErrs)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "nosuch:///collector:4317")
	c = newConfig([]Option{WithProtocol(ProtocolGRPC)})
	if u, err := c.targetURL(); err != nil || u.Host != "localhost:4317" ||
		c.envErrs == nil || !strings.Contains(c.envErrs.Error(), `no resolver for the scheme "nosuch"`) {
		t.Fatalf("gRPC, unknown scheme: got %v (%v), reported %v", u, err, c.envErrs)
	}
}

// A target gRPC cannot resolve, or a target with OTLP/HTTP, is a
// configuration error that says what to write.
func TestGRPCTargetConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want string
	}{
		{"unknown scheme", []Option{WithProtocol(ProtocolGRPC), WithEndpoint("nosuch:///collector:4317")},
			`endpoint "nosuch:///collector:4317": gRPC has no resolver for the scheme "nosuch" (want host:port, or a gRPC target such as dns:///host:port or unix:///path)`},
		{"unparsable", []Option{WithProtocol(ProtocolGRPC), WithEndpoint("dns://[::1/x")}, `endpoint "dns://[::1/x" is not a valid gRPC target`},
		{"spaces", []Option{WithProtocol(ProtocolGRPC), WithEndpoint("dns:///collector :4317")}, "spaces or control characters"},
		{"credentials", []Option{WithProtocol(ProtocolGRPC), WithEndpoint("nosuch://user:s3cret@collector")}, `"xxxxx@collector"`},
		{"OTLP/HTTP", []Option{WithEndpoint("dns:///collector:4318")},
			`endpoint "dns:///collector:4318" is a gRPC target, which needs the grpc protocol (WithProtocol(ProtocolGRPC)); over OTLP/HTTP the endpoint is host:port (use WithEndpointURL for a URL)`},
		{"OTLP/HTTP, unix socket", []Option{WithProtocol(ProtocolGRPC), WithEndpoint("unix:///run/otlp.sock"), WithProtocol(ProtocolHTTPJSON)},
			"needs the grpc protocol"},
		{"OTLP/HTTP, unix: and a path", []Option{WithEndpoint("unix:/run/otlp.sock")}, "is a gRPC target, which needs the grpc protocol"},
		{"OTLP/HTTP, unix: and a name", []Option{WithEndpoint("unix:otlp.sock")}, "is a gRPC target, which needs the grpc protocol"},
		{"OTLP/HTTP, dns: host:port", []Option{WithEndpoint("dns:collector:4317")}, "is a gRPC target, which needs the grpc protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := New(append(tc.opts, WithLogger(zap.NewNop()))...)
			err := e.ExportSpans(context.Background(), otlptest.Indexed(3))
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("ExportSpans = %v, want an error containing %q", err, tc.want)
			}
			if ce := e.ConfigError(); ce == nil || ce.Error() != err.Error() {
				t.Errorf("ConfigError = %v", ce)
			}
			if s := e.Stats(); s.Dropped.Config != 3 {
				t.Errorf("got %+v, want 3 dropped with reason config", s)
			}
			shutdown(t, e)
		})
	}
}

// A scheme whose resolver comes with a dial option (grpc.WithResolvers)
// delivers; one that no dial option brings either is a configuration
// error, as without dial options.
func TestGRPCTargetWithAResolverFromADialOption(t *testing.T) {
	rcv := otlptest.NewGRPC(t, nil)
	r := manual.NewBuilderWithScheme("tkprobe")
	r.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: rcv.Endpoint()}}})
	e := New(WithProtocol(ProtocolGRPC), WithEndpoint("tkprobe:///collector"), WithInsecure(),
		WithDialOption(grpc.WithResolvers(r)), WithLogger(zap.NewNop()))
	if err := e.ConfigError(); err != nil {
		t.Fatal(err)
	}
	if s := exportOnce(t, e); s.Exported != 2 || rcv.Spans() != 2 {
		t.Fatalf("got %+v, received %d", s, rcv.Spans())
	}

	e = New(WithProtocol(ProtocolGRPC), WithEndpoint("nosuch:///collector"), WithInsecure(),
		WithDialOption(grpc.WithUserAgent("probe")), WithLogger(zap.NewNop()))
	if err := e.ConfigError(); err == nil || !strings.Contains(err.Error(), `no resolver for the scheme "nosuch"`) {
		t.Fatalf("ConfigError = %v", err)
	}
	shutdown(t, e)
}

// A nil dial option is ignored: New never panics.
func TestNilDialOptionIgnored(t *testing.T) {
	rcv := otlptest.NewGRPC(t, nil)
	var none grpc.DialOption
	e := New(WithProtocol(ProtocolGRPC), WithEndpoint(rcv.Endpoint()), WithInsecure(),
		WithDialOption(none, grpc.WithUserAgent("probe"), nil), WithLogger(zap.NewNop()))
	if err := e.ConfigError(); err != nil {
		t.Fatal(err)
	}
	if s := exportOnce(t, e); s.Exported != 2 {
		t.Fatalf("got %+v", s)
	}
}
