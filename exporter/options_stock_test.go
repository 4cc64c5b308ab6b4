package exporter

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

func TestEncodingAndProtocolLayering(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  string
		opts []Option
		want Protocol
	}{
		{"default", "", nil, ProtocolHTTPProtobuf},
		{"env http/json", "http/json", nil, ProtocolHTTPJSON},
		{"option json", "", []Option{WithEncoding(EncodingJSON)}, ProtocolHTTPJSON},
		{"option wins over env", "http/json", []Option{WithEncoding(EncodingProtobuf)}, ProtocolHTTPProtobuf},
		{"last of protocol and encoding wins", "", []Option{WithEncoding(EncodingJSON), WithProtocol(ProtocolHTTPProtobuf)}, ProtocolHTTPProtobuf},
		{"protocol then encoding", "", []Option{WithProtocol(ProtocolHTTPProtobuf), WithEncoding(EncodingJSON)}, ProtocolHTTPJSON},
		{"encoding ignored by grpc", "grpc", []Option{WithEncoding(EncodingJSON)}, ProtocolGRPC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", tc.env)
			}
			c := newConfig(tc.opts)
			if c.protocol != tc.want || c.validate() != nil {
				t.Fatalf("protocol %q (%v), want %q", c.protocol, c.validate(), tc.want)
			}
		})
	}
}

func TestOptionsForTheOtherProtocolAreIgnoredWithAWarning(t *testing.T) {
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	httpOnly := []Option{WithURLPath("/v1/traces"), WithEncoding(EncodingJSON), WithProxy(http.ProxyFromEnvironment), WithHTTPClient(&http.Client{}), WithMaxResponseSize(1 << 20), WithProxy(nil)}
	grpcOnly := []Option{WithReconnectionPeriod(time.Second), WithTLSCredentials(insecure.NewCredentials()), WithServiceConfig("{}"), WithDialOption(grpc.WithUserAgent("x")), WithGRPCConn(conn)}
	for _, tc := range []struct {
		name     string
		protocol Protocol
		opts     []Option
		want     []string
	}{
		{"http options under grpc", ProtocolGRPC, httpOnly, []string{"WithEncoding", "WithHTTPClient", "WithMaxResponseSize", "WithProxy", "WithURLPath"}},
		{"grpc options under http", ProtocolHTTPProtobuf, grpcOnly, []string{"WithDialOption", "WithGRPCConn", "WithReconnectionPeriod", "WithServiceConfig", "WithTLSCredentials"}},
		{"none", ProtocolHTTPProtobuf, httpOnly, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			opts := append([]Option{WithProtocol(tc.protocol), WithInsecure(), WithLogger(zap.New(core))}, tc.opts...)
			if tc.want == nil {
				// The HTTP client given would be used: keep it off the network.
				opts = append(opts, WithEndpoint("127.0.0.1:1"))
			}
			e := New(opts...)
			shutdown(t, e)
			if e.cfgErr != nil {
				t.Fatalf("an option for the other protocol must not invalidate the configuration: %v", e.cfgErr)
			}
			entries := logs.FilterMessageSnippet("do not apply to the protocol").All()
			if tc.want == nil {
				if len(entries) != 0 {
					t.Fatalf("unexpected warning %v", entries)
				}
				return
			}
			if len(entries) != 1 {
				t.Fatalf("want one warning, got %v", logs.All())
			}
			got := entries[0].ContextMap()["options"]
			if strings.Join(toStrings(got), ",") != strings.Join(tc.want, ",") {
				t.Fatalf("warning names %v, want %v", got, tc.want)
			}
		})
	}
}

func toStrings(v any) []string {
	var out []string
	if vs, ok := v.([]any); ok {
		for _, s := range vs {
			out = append(out, s.(string))
		}
	}
	return out
}

func TestBadStockOptionValuesAreConfigurationErrors(t *testing.T) {
	for _, tc := range []struct {
		opt  Option
		want string
	}{
		{WithCompressor("zstd"), `unknown compressor "zstd"`},
		{WithEncoding(Encoding(7)), "unknown encoding 7"},
		{WithReconnectionPeriod(-time.Second), "reconnection period must not be negative"},
	} {
		if err := newConfig([]Option{tc.opt}).validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
	c := newConfig([]Option{WithCompression(GzipCompression), WithCompressor("none"), WithMaxResponseSize(0)})
	if c.compression != NoCompression || c.maxResponseBytes != 0 {
		t.Fatalf("WithCompressor(none) / WithMaxResponseSize(0): %+v", c)
	}
}

func TestHTTPJSONDelivers(t *testing.T) {
	rcv := &otlptest.Capture{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	e := New(WithEndpoint(strings.TrimPrefix(srv.URL, "http://")), WithInsecure(), WithEncoding(EncodingJSON), WithLogger(zap.NewNop()))
	defer shutdown(t, e)
	spans := otlptest.Indexed(5)
	if err := e.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	if err := e.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	bodies, types := rcv.Take()
	if len(bodies) != 1 || types[0] != "application/json" {
		t.Fatalf("got %d bodies, types %v", len(bodies), types)
	}
	if !strings.HasPrefix(string(bodies[0]), `{"resourceSpans":[`) {
		t.Fatalf("not OTLP/JSON: %.80s", bodies[0])
	}
	if s := e.Stats(); s.Exported != 5 {
		t.Fatalf("stats %+v", s)
	}
}
