package otlpenc

import (
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// This file holds the reference the encoder is checked against: a plain
// conversion of spans to the generated tracepb structs, written for clarity
// rather than speed, following what the stock otlptrace exporter sends. It
// differs from the stock exporter only where the encoder does on purpose:
// resources come in first-seen order and strings are repaired to valid
// UTF-8.

// converter converts spans and counts the strings it repaired.
type converter struct{ repaired int }

func (c *converter) fixUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	c.repaired++
	return strings.ToValidUTF8(s, "\uFFFD")
}

// reference converts spans to the request the encoder must produce.
func reference(spans []sdktrace.ReadOnlySpan) *coltracepb.ExportTraceServiceRequest {
	var c converter
	return c.request(spans)
}

func (c *converter) request(spans []sdktrace.ReadOnlySpan) *coltracepb.ExportTraceServiceRequest {
	type scopeKey struct {
		res   attribute.Distinct
		scope instrumentation.Scope
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	byRes := map[attribute.Distinct]*tracepb.ResourceSpans{}
	byScope := map[scopeKey]*tracepb.ScopeSpans{}
	for _, s := range spans {
		if s == nil {
			continue
		}
		res := s.Resource()
		rk := res.Equivalent()
		rs, ok := byRes[rk]
		if !ok {
			rs = &tracepb.ResourceSpans{SchemaUrl: c.fixUTF8(res.SchemaURL())}
			if res != nil {
				rs.Resource = &resourcepb.Resource{Attributes: c.keyValues(res.Attributes())}
			}
			byRes[rk] = rs
			req.ResourceSpans = append(req.ResourceSpans, rs)
		}
		sc := s.InstrumentationScope()
		sk := scopeKey{rk, sc}
		ss, ok := byScope[sk]
		if !ok {
			ss = &tracepb.ScopeSpans{SchemaUrl: c.fixUTF8(sc.SchemaURL)}
			if sc != (instrumentation.Scope{}) {
				ss.Scope = &commonpb.InstrumentationScope{
					Name:       c.fixUTF8(sc.Name),
					Version:    c.fixUTF8(sc.Version),
					Attributes: c.keyValues(sc.Attributes.ToSlice()),
				}
			}
			byScope[sk] = ss
			rs.ScopeSpans = append(rs.ScopeSpans, ss)
		}
		ss.Spans = append(ss.Spans, c.span(s))
	}
	return req
}

func refTime(t interface{ UnixNano() int64 }) uint64 {
	if n := t.UnixNano(); n > 0 {
		return uint64(n)
	}
	return 0
}

func refCount(n int) uint32 {
	switch {
	case n < 0:
		return 0
	case n > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(n)
}

func refFlags(tf trace.TraceFlags, remote bool) uint32 {
	f := uint32(tf) | uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK)
	if remote {
		f |= uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)
	}
	return f
}

func (c *converter) span(s sdktrace.ReadOnlySpan) *tracepb.Span {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	out := &tracepb.Span{
		TraceId:                tid[:],
		SpanId:                 sid[:],
		TraceState:             sc.TraceState().String(),
		Name:                   c.fixUTF8(s.Name()),
		StartTimeUnixNano:      refTime(s.StartTime()),
		EndTimeUnixNano:        refTime(s.EndTime()),
		Attributes:             c.keyValues(s.Attributes()),
		DroppedAttributesCount: refCount(s.DroppedAttributes()),
		DroppedEventsCount:     refCount(s.DroppedEvents()),
		DroppedLinksCount:      refCount(s.DroppedLinks()),
		Flags:                  refFlags(sc.TraceFlags(), s.Parent().IsRemote()),
		Status:                 &tracepb.Status{Message: c.fixUTF8(s.Status().Description)},
	}
	if p := s.Parent().SpanID(); p.IsValid() {
		out.ParentSpanId = p[:]
	}
	switch s.SpanKind() {
	case trace.SpanKindInternal:
		out.Kind = tracepb.Span_SPAN_KIND_INTERNAL
	case trace.SpanKindServer:
		out.Kind = tracepb.Span_SPAN_KIND_SERVER
	case trace.SpanKindClient:
		out.Kind = tracepb.Span_SPAN_KIND_CLIENT
	case trace.SpanKindProducer:
		out.Kind = tracepb.Span_SPAN_KIND_PRODUCER
	case trace.SpanKindConsumer:
		out.Kind = tracepb.Span_SPAN_KIND_CONSUMER
	}
	switch s.Status().Code {
	case codes.Ok:
		out.Status.Code = tracepb.Status_STATUS_CODE_OK
	case codes.Error:
		out.Status.Code = tracepb.Status_STATUS_CODE_ERROR
	}
	for _, ev := range s.Events() {
		out.Events = append(out.Events, &tracepb.Span_Event{
			TimeUnixNano:           refTime(ev.Time),
			Name:                   c.fixUTF8(ev.Name),
			Attributes:             c.keyValues(ev.Attributes),
			DroppedAttributesCount: refCount(ev.DroppedAttributeCount),
		})
	}
	for _, l := range s.Links() {
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		out.Links = append(out.Links, &tracepb.Span_Link{
			TraceId:                ltid[:],
			SpanId:                 lsid[:],
			Attributes:             c.keyValues(l.Attributes),
			DroppedAttributesCount: refCount(l.DroppedAttributeCount),
			Flags:                  refFlags(l.SpanContext.TraceFlags(), l.SpanContext.IsRemote()),
		})
	}
	return out
}

func (c *converter) keyValues(kvs []attribute.KeyValue) []*commonpb.KeyValue {
	var out []*commonpb.KeyValue
	for _, kv := range kvs {
		out = append(out, &commonpb.KeyValue{Key: c.fixUTF8(string(kv.Key)), Value: c.value(kv.Value)})
	}
	return out
}

func (c *converter) value(v attribute.Value) *commonpb.AnyValue {
	av := &commonpb.AnyValue{}
	array := func(vals []*commonpb.AnyValue) {
		av.Value = &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vals}}
	}
	switch v.Type() {
	case attribute.EMPTY:
	case attribute.BOOL:
		av.Value = &commonpb.AnyValue_BoolValue{BoolValue: v.AsBool()}
	case attribute.INT64:
		av.Value = &commonpb.AnyValue_IntValue{IntValue: v.AsInt64()}
	case attribute.FLOAT64:
		av.Value = &commonpb.AnyValue_DoubleValue{DoubleValue: v.AsFloat64()}
	case attribute.STRING:
		av.Value = &commonpb.AnyValue_StringValue{StringValue: c.fixUTF8(v.AsString())}
	case attribute.BYTESLICE:
		av.Value = &commonpb.AnyValue_BytesValue{BytesValue: v.AsByteSlice()}
	case attribute.BOOLSLICE:
		vals := []*commonpb.AnyValue{}
		for _, x := range v.AsBoolSlice() {
			vals = append(vals, c.value(attribute.BoolValue(x)))
		}
		array(vals)
	case attribute.INT64SLICE:
		vals := []*commonpb.AnyValue{}
		for _, x := range v.AsInt64Slice() {
			vals = append(vals, c.value(attribute.Int64Value(x)))
		}
		array(vals)
	case attribute.FLOAT64SLICE:
		vals := []*commonpb.AnyValue{}
		for _, x := range v.AsFloat64Slice() {
			vals = append(vals, c.value(attribute.Float64Value(x)))
		}
		array(vals)
	case attribute.STRINGSLICE:
		vals := []*commonpb.AnyValue{}
		for _, x := range v.AsStringSlice() {
			vals = append(vals, c.value(attribute.StringValue(x)))
		}
		array(vals)
	case attribute.SLICE:
		vals := []*commonpb.AnyValue{}
		for _, x := range v.AsSlice() {
			vals = append(vals, c.value(x))
		}
		array(vals)
	case attribute.MAP:
		av.Value = &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: c.keyValues(v.AsMap())}}
	default:
		av.Value = &commonpb.AnyValue_StringValue{StringValue: "INVALID"}
	}
	return av
}

// decode parses an encoded request, failing the test on error.
func decode(t testing.TB, body []byte) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	got := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(body, got); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return got
}

// assertEqual fails the test, showing both messages, unless proto.Equal
// holds.
func assertEqual(t testing.TB, want, got proto.Message) {
	t.Helper()
	if !proto.Equal(want, got) {
		t.Fatalf("decoded request differs from the reference\nwant:\n%s\ngot:\n%s",
			prototext.Format(want), prototext.Format(got))
	}
}
