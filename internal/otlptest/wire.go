package otlptest

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// WireSpan is a comparable form of a span, built either from what the SDK
// recorded (Expect) or from what arrived on the wire (FromRequests), and
// compared with reflect.DeepEqual (CompareSpans, DiffSpans).
//
// Ids are lowercase hex. Resource and Scope render the span's envelope,
// attributes included. Attributes are "key=type:value" strings, sorted,
// since the order of attributes carries no meaning in OTLP; values carry
// their type ("int:7", "string:\"7\"", "bytes:07", "[int:1,bool:true]",
// "{k=string:\"v\"}"), so an int that arrives as a string, or a byte slice
// as a string, does not compare equal. Events and Links are rendered the
// same way, in order.
type WireSpan struct {
	Resource, Scope   string
	TraceID, SpanID   string
	ParentSpanID      string
	TraceState        string
	Flags             uint32
	Name              string
	Kind              int32
	Start, End        uint64
	Attributes        []string
	DroppedAttributes uint32
	Events            []string
	DroppedEvents     uint32
	Links             []string
	DroppedLinks      uint32
	StatusCode        int32
	StatusMessage     string
}

// OTLP SpanFlags bits that say whether the parent (or linked) context is
// known to be remote, and whether it is.
const (
	flagHasIsRemote = 0x100
	flagIsRemote    = 0x200
)

// repaired is what a string looks like once the exporter has replaced each
// invalid UTF-8 sequence with U+FFFD.
func repaired(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func renderResource(attrs []string, schema string) string {
	return fmt.Sprintf("schema=%q attrs=%v", schema, attrs)
}

func renderScope(name, version, schema string, attrs []string) string {
	return fmt.Sprintf("name=%q version=%q schema=%q attrs=%v", name, version, schema, attrs)
}

// Expect returns the WireSpan that the exporter must send for s: the
// OTLP span flags with the parent's (and each link's) remoteness, and every
// string with its invalid UTF-8 sequences replaced by U+FFFD.
func Expect(s sdktrace.ReadOnlySpan) WireSpan {
	sc, parent := s.SpanContext(), s.Parent()
	flags := uint32(sc.TraceFlags()) | flagHasIsRemote
	if parent.IsRemote() {
		flags |= flagIsRemote
	}
	ws := WireSpan{
		Resource:          renderResource(renderKVs(s.Resource().Attributes()), s.Resource().SchemaURL()),
		TraceID:           sc.TraceID().String(),
		SpanID:            sc.SpanID().String(),
		TraceState:        sc.TraceState().String(),
		Flags:             flags,
		Name:              repaired(s.Name()),
		Kind:              wireKind(s.SpanKind()),
		Start:             uint64(s.StartTime().UnixNano()),
		End:               uint64(s.EndTime().UnixNano()),
		Attributes:        renderKVs(s.Attributes()),
		DroppedAttributes: uint32(s.DroppedAttributes()),
		DroppedEvents:     uint32(s.DroppedEvents()),
		DroppedLinks:      uint32(s.DroppedLinks()),
		StatusCode:        wireStatus(s.Status().Code),
		StatusMessage:     repaired(s.Status().Description),
	}
	is := s.InstrumentationScope()
	ws.Scope = renderScope(is.Name, is.Version, is.SchemaURL, renderKVs(is.Attributes.ToSlice()))
	if parent.SpanID().IsValid() {
		ws.ParentSpanID = parent.SpanID().String()
	}
	for _, ev := range s.Events() {
		ws.Events = append(ws.Events, renderEvent(uint64(ev.Time.UnixNano()), repaired(ev.Name),
			renderKVs(ev.Attributes), uint32(ev.DroppedAttributeCount)))
	}
	for _, l := range s.Links() {
		lf := uint32(l.SpanContext.TraceFlags()) | flagHasIsRemote
		if l.SpanContext.IsRemote() {
			lf |= flagIsRemote
		}
		ws.Links = append(ws.Links, renderLink(l.SpanContext.TraceID().String(), l.SpanContext.SpanID().String(),
			lf, renderKVs(l.Attributes), uint32(l.DroppedAttributeCount)))
	}
	return ws
}

// FromRequests returns every span in reqs as a WireSpan, by span id,
// failing the test if one arrived twice.
func FromRequests(t testing.TB, reqs []*coltracepb.ExportTraceServiceRequest) map[string]WireSpan {
	t.Helper()
	out := make(map[string]WireSpan)
	for _, req := range reqs {
		for _, rs := range req.GetResourceSpans() {
			res := renderResource(renderAnyKVs(rs.GetResource().GetAttributes()), rs.GetSchemaUrl())
			for _, ss := range rs.GetScopeSpans() {
				sc := ss.GetScope()
				scope := renderScope(sc.GetName(), sc.GetVersion(), ss.GetSchemaUrl(), renderAnyKVs(sc.GetAttributes()))
				for _, sp := range ss.GetSpans() {
					ws := fromWire(res, scope, sp)
					if _, dup := out[ws.SpanID]; dup {
						t.Errorf("span %s %q delivered more than once", ws.SpanID, ws.Name)
					}
					out[ws.SpanID] = ws
				}
			}
		}
	}
	return out
}

// fromWire builds the comparable form of a span received by the backend.
func fromWire(res, scope string, sp *tracepb.Span) WireSpan {
	ws := WireSpan{
		Resource:          res,
		Scope:             scope,
		TraceID:           hex.EncodeToString(sp.GetTraceId()),
		SpanID:            hex.EncodeToString(sp.GetSpanId()),
		TraceState:        sp.GetTraceState(),
		Flags:             sp.GetFlags(),
		Name:              sp.GetName(),
		Kind:              int32(sp.GetKind()),
		Start:             sp.GetStartTimeUnixNano(),
		End:               sp.GetEndTimeUnixNano(),
		Attributes:        renderAnyKVs(sp.GetAttributes()),
		DroppedAttributes: sp.GetDroppedAttributesCount(),
		DroppedEvents:     sp.GetDroppedEventsCount(),
		DroppedLinks:      sp.GetDroppedLinksCount(),
		StatusCode:        int32(sp.GetStatus().GetCode()),
		StatusMessage:     sp.GetStatus().GetMessage(),
	}
	if len(sp.GetParentSpanId()) > 0 {
		ws.ParentSpanID = hex.EncodeToString(sp.GetParentSpanId())
	}
	for _, ev := range sp.GetEvents() {
		ws.Events = append(ws.Events, renderEvent(ev.GetTimeUnixNano(), ev.GetName(),
			renderAnyKVs(ev.GetAttributes()), ev.GetDroppedAttributesCount()))
	}
	for _, l := range sp.GetLinks() {
		ws.Links = append(ws.Links, renderLink(hex.EncodeToString(l.GetTraceId()), hex.EncodeToString(l.GetSpanId()),
			l.GetFlags(), renderAnyKVs(l.GetAttributes()), l.GetDroppedAttributesCount()))
	}
	return ws
}

func renderEvent(t uint64, name string, attrs []string, dropped uint32) string {
	return fmt.Sprintf("time=%d name=%q attrs=%v dropped=%d", t, name, attrs, dropped)
}

func renderLink(tid, sid string, flags uint32, attrs []string, dropped uint32) string {
	return fmt.Sprintf("%s/%s flags=%#x attrs=%v dropped=%d", tid, sid, flags, attrs, dropped)
}

// wireKind maps an SDK span kind to the OTLP Span.SpanKind number.
func wireKind(k trace.SpanKind) int32 {
	switch k {
	case trace.SpanKindInternal:
		return int32(tracepb.Span_SPAN_KIND_INTERNAL)
	case trace.SpanKindServer:
		return int32(tracepb.Span_SPAN_KIND_SERVER)
	case trace.SpanKindClient:
		return int32(tracepb.Span_SPAN_KIND_CLIENT)
	case trace.SpanKindProducer:
		return int32(tracepb.Span_SPAN_KIND_PRODUCER)
	case trace.SpanKindConsumer:
		return int32(tracepb.Span_SPAN_KIND_CONSUMER)
	}
	return int32(tracepb.Span_SPAN_KIND_UNSPECIFIED)
}

// wireStatus maps an SDK status code to the OTLP Status.StatusCode number.
func wireStatus(c codes.Code) int32 {
	switch c {
	case codes.Ok:
		return int32(tracepb.Status_STATUS_CODE_OK)
	case codes.Error:
		return int32(tracepb.Status_STATUS_CODE_ERROR)
	}
	return int32(tracepb.Status_STATUS_CODE_UNSET)
}

// renderKVs renders SDK attributes as sorted "key=type:value" strings.
func renderKVs(kvs []attribute.KeyValue) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, repaired(string(kv.Key))+"="+renderValue(kv.Value))
	}
	slices.Sort(out)
	return out
}

func renderValue(v attribute.Value) string {
	list := func(n int, item func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = item(i)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	switch v.Type() {
	case attribute.EMPTY:
		return "empty"
	case attribute.BOOL:
		return "bool:" + strconv.FormatBool(v.AsBool())
	case attribute.INT64:
		return "int:" + strconv.FormatInt(v.AsInt64(), 10)
	case attribute.FLOAT64:
		return "double:" + strconv.FormatFloat(v.AsFloat64(), 'g', -1, 64)
	case attribute.STRING:
		return "string:" + strconv.Quote(repaired(v.AsString()))
	case attribute.BYTESLICE:
		return "bytes:" + hex.EncodeToString(v.AsByteSlice())
	case attribute.BOOLSLICE:
		s := v.AsBoolSlice()
		return list(len(s), func(i int) string { return renderValue(attribute.BoolValue(s[i])) })
	case attribute.INT64SLICE:
		s := v.AsInt64Slice()
		return list(len(s), func(i int) string { return renderValue(attribute.Int64Value(s[i])) })
	case attribute.FLOAT64SLICE:
		s := v.AsFloat64Slice()
		return list(len(s), func(i int) string { return renderValue(attribute.Float64Value(s[i])) })
	case attribute.STRINGSLICE:
		s := v.AsStringSlice()
		return list(len(s), func(i int) string { return renderValue(attribute.StringValue(s[i])) })
	case attribute.SLICE:
		s := v.AsSlice()
		return list(len(s), func(i int) string { return renderValue(s[i]) })
	case attribute.MAP:
		return "{" + strings.Join(renderKVs(v.AsMap()), ",") + "}"
	}
	return "unknown:" + v.Type().String()
}

func renderAnyKVs(kvs []*commonpb.KeyValue) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.GetKey()+"="+renderAny(kv.GetValue()))
	}
	slices.Sort(out)
	return out
}

func renderAny(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case nil:
		return "empty"
	case *commonpb.AnyValue_BoolValue:
		return "bool:" + strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return "int:" + strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return "double:" + strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *commonpb.AnyValue_StringValue:
		return "string:" + strconv.Quote(x.StringValue)
	case *commonpb.AnyValue_BytesValue:
		return "bytes:" + hex.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		parts := make([]string, len(x.ArrayValue.GetValues()))
		for i, e := range x.ArrayValue.GetValues() {
			parts[i] = renderAny(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case *commonpb.AnyValue_KvlistValue:
		return "{" + strings.Join(renderAnyKVs(x.KvlistValue.GetValues()), ",") + "}"
	}
	return fmt.Sprintf("unknown:%T", v.GetValue())
}

// maxReports is how many differing spans CompareSpans reports before it
// stops the test.
const maxReports = 5

// CompareSpans fails the test unless got holds exactly the spans of want,
// each as Expect describes it: it reports spans that never arrived, spans
// that arrived different (with the fields that differ), and spans that
// arrived but were not expected. After five missing or different spans it
// stops the test with t.Fatalf.
func CompareSpans(t testing.TB, want []sdktrace.ReadOnlySpan, got map[string]WireSpan) {
	t.Helper()
	reports := 0
	wantIDs := make(map[string]bool, len(want))
	for _, s := range want {
		w := Expect(s)
		wantIDs[w.SpanID] = true
		g, ok := got[w.SpanID]
		switch {
		case !ok:
			t.Errorf("span %s %q never arrived", w.SpanID, w.Name)
			reports++
		case !reflect.DeepEqual(w, g):
			t.Errorf("span %s arrived different:\n%s", w.SpanID, DiffSpans(w, g))
			reports++
		}
		if reports >= maxReports {
			t.Fatalf("more differences left unreported")
		}
	}
	for id, g := range got {
		if !wantIDs[id] {
			t.Errorf("span %s %q arrived but was not expected", id, g.Name)
		}
	}
}

// DiffSpans lists the fields in which two WireSpans differ, one field with
// both values per entry; it is empty when they are equal.
func DiffSpans(want, got WireSpan) string {
	var b strings.Builder
	wv, gv := reflect.ValueOf(want), reflect.ValueOf(got)
	for i := range wv.NumField() {
		w, g := wv.Field(i).Interface(), gv.Field(i).Interface()
		if !reflect.DeepEqual(w, g) {
			fmt.Fprintf(&b, "  %s:\n    want %v\n    got  %v\n", wv.Type().Field(i).Name, w, g)
		}
	}
	return b.String()
}
