package scenario

import (
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// request builds an encoded request holding, for each resource, one scope
// per entry of its slice with that many spans.
func request(t testing.TB, resources ...[]int) []byte {
	t.Helper()
	msg := &coltracepb.ExportTraceServiceRequest{}
	for r, scopes := range resources {
		rs := &tracepb.ResourceSpans{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{
				Key: "service.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: int64(r)}},
			}}},
			SchemaUrl: "https://opentelemetry.io/schemas/1.26.0",
		}
		for s, n := range scopes {
			ss := &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: "scope", Version: string(rune('a' + s))}}
			for i := range n {
				ss.Spans = append(ss.Spans, &tracepb.Span{
					TraceId: make([]byte, 16), SpanId: []byte{0, 0, 0, 0, 0, 0, 0, byte(i + 1)},
					Name: "span", Kind: tracepb.Span_SPAN_KIND_SERVER,
					StartTimeUnixNano: 1, EndTimeUnixNano: 2,
				})
			}
			rs.ScopeSpans = append(rs.ScopeSpans, ss)
		}
		msg.ResourceSpans = append(msg.ResourceSpans, rs)
	}
	b, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCountSpans(t *testing.T) {
	two := request(t, []int{2})
	tests := []struct {
		name    string
		body    []byte
		want    int
		wantErr bool
	}{
		{"empty request", nil, 0, false},
		{"one span", request(t, []int{1}), 1, false},
		{"scopes and resources", request(t, []int{3, 0, 2}, []int{5}), 10, false},
		{"resource without scopes", request(t, []int{}), 0, false},
		{"concatenated requests", append(request(t, []int{4}), request(t, []int{6})...), 10, false},
		{"unknown fields around", append(protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 7),
			append(two, protowire.AppendString(protowire.AppendTag(nil, 10, protowire.BytesType), "x")...)...), 2, false},
		{"resource_spans with the wrong wire type is unknown", protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 3), 0, false},
		{"truncated", two[:len(two)-3], 0, true},
		{"bad tag", []byte{0x80}, 0, true},
		{"length past the end", []byte{0x0a, 0x05, 0x12}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CountSpans(tt.body)
			if (err != nil) != tt.wantErr {
				t.Fatalf("CountSpans error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("CountSpans = %d, want %d", got, tt.want)
			}
		})
	}
}

// FuzzCountSpans checks CountSpans against proto.Unmarshal: whenever the
// full decoder accepts a body, CountSpans must accept it and agree.
func FuzzCountSpans(f *testing.F) {
	f.Add([]byte{})
	f.Add(request(f, []int{1}))
	f.Add(request(f, []int{3, 0, 2}, []int{5}))
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := CountSpans(body)
		var msg coltracepb.ExportTraceServiceRequest
		if uerr := proto.Unmarshal(body, &msg); uerr != nil {
			return
		}
		if err != nil {
			t.Fatalf("CountSpans failed on a body proto.Unmarshal accepts: %v", err)
		}
		want := 0
		for _, rs := range msg.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				want += len(ss.GetSpans())
			}
		}
		if got != want {
			t.Fatalf("CountSpans = %d, proto.Unmarshal found %d spans", got, want)
		}
	})
}

func BenchmarkCountSpans(b *testing.B) {
	body := request(b, []int{512})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := CountSpans(body); err != nil {
			b.Fatal(err)
		}
	}
}
