package otlpenc

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// fromOTLPJSON parses OTLP/JSON with protojson, after turning the
// hexadecimal ids OTLP/JSON uses into the base64 protojson expects.
func fromOTLPJSON(t testing.TB, data []byte) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, data)
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "traceId" || k == "spanId" || k == "parentSpanId") {
					raw, err := hex.DecodeString(s)
					if err != nil {
						t.Fatalf("%s %q is not hex: %v", k, s, err)
					}
					v[k] = base64.StdEncoding.EncodeToString(raw)
					continue
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(tree)
	converted, err := json.Marshal(tree)
	if err != nil {
		t.Fatal(err)
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := protojson.Unmarshal(converted, req); err != nil {
		t.Fatalf("protojson: %v\n%s", err, converted)
	}
	return req
}

func TestAppendJSONRoundTrip(t *testing.T) {
	awkward := tracetest.SpanStub{
		Name:        "quote\" backslash\\ newline\n tab\t nul\x00 bell\x07 \u2028 é 日本",
		SpanContext: spanContext(5, true, true),
		Attributes: []attribute.KeyValue{
			attribute.String("html", "<a href='x'>&</a>"),
			attribute.Float64("tiny", 1e-300),
			attribute.Float64("huge", 1e300),
			attribute.Float64("third", 1.0/3),
		},
	}.Snapshot()
	tests := []struct {
		name  string
		spans []sdktrace.ReadOnlySpan
	}{
		{name: "every value type", spans: []sdktrace.ReadOnlySpan{tracetest.SpanStub{
			Name: "v", SpanContext: spanContext(1, true, false), Parent: spanContext(2, false, true),
			Attributes: everyValue(), Resource: resA, InstrumentationScope: scopeC,
		}.Snapshot()}},
		{name: "mixed batch", spans: mixedBatch(40)},
		{name: "zero span", spans: []sdktrace.ReadOnlySpan{tracetest.SpanStub{}.Snapshot()}},
		{name: "awkward strings and numbers", spans: []sdktrace.ReadOnlySpan{awkward}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := encodeAll(t, tt.spans)
			prefix := []byte("keep me|")
			out, err := AppendJSON(bytes.Clone(prefix), body)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(out, prefix) {
				t.Fatal("AppendJSON did not append")
			}
			line := out[len(prefix):]
			if bytes.ContainsAny(line, "\n\r") {
				t.Fatal("the JSON spans more than one line")
			}
			assertEqual(t, decode(t, body), fromOTLPJSON(t, line))
		})
	}
}

func TestAppendJSONFormat(t *testing.T) {
	body := encodeAll(t, []sdktrace.ReadOnlySpan{tracetest.SpanStub{
		Name:        "op",
		SpanContext: spanContext(1, true, false),
		Parent:      spanContext(2, true, true),
		StartTime:   epoch,
		Attributes:  []attribute.KeyValue{attribute.Int("n", 1)},
	}.Snapshot()})
	got, err := AppendJSON(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resourceSpans":[{"scopeSpans":[{"spans":[{` +
		`"traceId":"0af7651916cd43dd0000000000000001","spanId":"0000000000000001",` +
		`"parentSpanId":"0000000000000002","name":"op","startTimeUnixNano":"1772366400000000000",` +
		`"attributes":[{"key":"n","value":{"intValue":"1"}}],"status":{},"flags":769}]}]}]}`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestAppendJSONMalformed(t *testing.T) {
	dst := []byte("x")
	out, err := AppendJSON(dst, []byte{0x0a, 100})
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("error = %v, want ErrMalformed", err)
	}
	if string(out) != "x" {
		t.Errorf("dst changed to %q", out)
	}
}
