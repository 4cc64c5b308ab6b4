package otlpparity

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Decode reads a protobuf ExportTraceServiceRequest.
func Decode(body []byte) (*coltracepb.ExportTraceServiceRequest, error) {
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(body, req); err != nil {
		return nil, fmt.Errorf("otlpparity: decode protobuf: %w", err)
	}
	return req, nil
}

// DecodeJSON reads an OTLP/JSON ExportTraceServiceRequest. OTLP/JSON is the
// Protobuf JSON mapping with hex trace and span ids; the ids are turned into
// base64 and the result read with protojson.
func DecodeJSON(data []byte) (*coltracepb.ExportTraceServiceRequest, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, fmt.Errorf("otlpparity: decode JSON: %w", err)
	}
	if err := hexIDsToBase64(tree); err != nil {
		return nil, err
	}
	converted, err := json.Marshal(tree)
	if err != nil {
		return nil, fmt.Errorf("otlpparity: re-encode JSON: %w", err)
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := protojson.Unmarshal(converted, req); err != nil {
		return nil, fmt.Errorf("otlpparity: protojson: %w", err)
	}
	return req, nil
}

func hexIDsToBase64(v any) error {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && (k == "traceId" || k == "spanId" || k == "parentSpanId") {
				raw, err := hex.DecodeString(s)
				if err != nil {
					return fmt.Errorf("otlpparity: %s %q: %w", k, s, err)
				}
				v[k] = base64.StdEncoding.EncodeToString(raw)
				continue
			}
			if err := hexIDsToBase64(x); err != nil {
				return err
			}
		}
	case []any:
		for _, x := range v {
			if err := hexIDsToBase64(x); err != nil {
				return err
			}
		}
	}
	return nil
}

// Normalize returns a copy of req with its ResourceSpans sorted by
// envelope (resource and schema URL). The stock exporter emits resources in
// map iteration order, so two requests are compared after Normalize.
func Normalize(req *coltracepb.ExportTraceServiceRequest) *coltracepb.ExportTraceServiceRequest {
	req = proto.CloneOf(req)
	key := func(rs *tracepb.ResourceSpans) string {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(rs.Resource)
		if err != nil {
			panic(err) // a decoded message always marshals
		}
		return string(b) + "\x00" + rs.SchemaUrl
	}
	slices.SortStableFunc(req.ResourceSpans, func(a, b *tracepb.ResourceSpans) int {
		return cmp.Compare(key(a), key(b))
	})
	return req
}

// ClearEmptyBytes returns a copy of req in which every AnyValue holding an
// empty bytes_value is made empty. The stock OTLP/JSON encoder writes both
// the same way (it drops an empty bytes_value), so a request read back from
// its JSON is compared with others after ClearEmptyBytes.
func ClearEmptyBytes(req *coltracepb.ExportTraceServiceRequest) *coltracepb.ExportTraceServiceRequest {
	req = proto.CloneOf(req)
	for _, rs := range req.ResourceSpans {
		if rs.Resource != nil {
			clearKeyValues(rs.Resource.Attributes)
		}
		for _, ss := range rs.ScopeSpans {
			if ss.Scope != nil {
				clearKeyValues(ss.Scope.Attributes)
			}
			for _, s := range ss.Spans {
				clearKeyValues(s.Attributes)
				for _, e := range s.Events {
					clearKeyValues(e.Attributes)
				}
				for _, l := range s.Links {
					clearKeyValues(l.Attributes)
				}
			}
		}
	}
	return req
}

func clearKeyValues(kvs []*commonpb.KeyValue) {
	for _, kv := range kvs {
		clearValue(kv.Value)
	}
}

func clearValue(v *commonpb.AnyValue) {
	if v == nil {
		return
	}
	switch x := v.Value.(type) {
	case *commonpb.AnyValue_BytesValue:
		if len(x.BytesValue) == 0 {
			v.Value = nil
		}
	case *commonpb.AnyValue_ArrayValue:
		for _, e := range x.ArrayValue.GetValues() {
			clearValue(e)
		}
	case *commonpb.AnyValue_KvlistValue:
		clearKeyValues(x.KvlistValue.GetValues())
	}
}
