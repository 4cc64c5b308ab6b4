package otlpenc

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// AppendJSON appends the OTLP/JSON encoding of an encoded
// ExportTraceServiceRequest to dst, on one line with no trailing newline,
// ready to be written as one record of a replay file.
//
// The encoding is the one the OTLP specification defines for OTLP/HTTP
// JSON: the Protobuf JSON mapping with lowerCamelCase field names, 64-bit
// integers as decimal strings and fields holding their zero value left out,
// except that trace and span ids are hexadecimal strings and enums are
// numbers. Fields appear in field number order. It returns an error
// wrapping ErrMalformed when body does not decode.
func AppendJSON(dst, body []byte) ([]byte, error) {
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		return dst, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	w := jsonWriter{b: dst}
	w.request(&req)
	return w.b, nil
}

// jsonWriter appends JSON. Each object method writes its braces; field
// writes the separator and the name.
type jsonWriter struct{ b []byte }

// obj is the state of the object being written: whether a field has been
// written yet.
type obj struct{ more bool }

func (w *jsonWriter) field(o *obj, name string) {
	if o.more {
		w.b = append(w.b, ',')
	}
	o.more = true
	w.b = append(w.b, '"')
	w.b = append(w.b, name...)
	w.b = append(w.b, '"', ':')
}

func (w *jsonWriter) str(o *obj, name, v string) {
	if v != "" {
		w.field(o, name)
		w.string(v)
	}
}

func (w *jsonWriter) uint32(o *obj, name string, v uint32) {
	if v != 0 {
		w.field(o, name)
		w.b = strconv.AppendUint(w.b, uint64(v), 10)
	}
}

func (w *jsonWriter) int32(o *obj, name string, v int32) {
	if v != 0 {
		w.field(o, name)
		w.b = strconv.AppendInt(w.b, int64(v), 10)
	}
}

func (w *jsonWriter) uint64(o *obj, name string, v uint64) {
	if v != 0 {
		w.field(o, name)
		w.b = append(w.b, '"')
		w.b = strconv.AppendUint(w.b, v, 10)
		w.b = append(w.b, '"')
	}
}

func (w *jsonWriter) id(o *obj, name string, v []byte) {
	if len(v) != 0 {
		w.field(o, name)
		w.b = append(w.b, '"')
		w.b = hex.AppendEncode(w.b, v)
		w.b = append(w.b, '"')
	}
}

func (w *jsonWriter) strings(o *obj, name string, vs []string) {
	if len(vs) == 0 {
		return
	}
	w.field(o, name)
	w.b = append(w.b, '[')
	for i, v := range vs {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.string(v)
	}
	w.b = append(w.b, ']')
}

// list writes a repeated message field.
func list[T any](w *jsonWriter, o *obj, name string, items []T, each func(T)) {
	if len(items) == 0 {
		return
	}
	w.field(o, name)
	w.b = append(w.b, '[')
	for i, it := range items {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		each(it)
	}
	w.b = append(w.b, ']')
}

func (w *jsonWriter) request(req *coltracepb.ExportTraceServiceRequest) {
	var o obj
	w.b = append(w.b, '{')
	list(w, &o, "resourceSpans", req.ResourceSpans, w.resourceSpans)
	w.b = append(w.b, '}')
}

func (w *jsonWriter) resourceSpans(rs *tracepb.ResourceSpans) {
	var o obj
	w.b = append(w.b, '{')
	if rs.Resource != nil {
		w.field(&o, "resource")
		w.resource(rs.Resource)
	}
	list(w, &o, "scopeSpans", rs.ScopeSpans, w.scopeSpans)
	w.str(&o, "schemaUrl", rs.SchemaUrl)
	w.b = append(w.b, '}')
}

func (w *jsonWriter) resource(r *resourcepb.Resource) {
	var o obj
	w.b = append(w.b, '{')
	list(w, &o, "attributes", r.Attributes, w.keyValue)
	w.uint32(&o, "droppedAttributesCount", r.DroppedAttributesCount)
	list(w, &o, "entityRefs", r.EntityRefs, w.entityRef)
	w.b = append(w.b, '}')
}

func (w *jsonWriter) entityRef(r *commonpb.EntityRef) {
	var o obj
	w.b = append(w.b, '{')
	w.str(&o, "schemaUrl", r.SchemaUrl)
	w.str(&o, "type", r.Type)
	w.strings(&o, "idKeys", r.IdKeys)
	w.strings(&o, "descriptionKeys", r.DescriptionKeys)
	w.b = append(w.b, '}')
}

func (w *jsonWriter) scopeSpans(ss *tracepb.ScopeSpans) {
	var o obj
	w.b = append(w.b, '{')
	if s := ss.Scope; s != nil {
		w.field(&o, "scope")
		var so obj
		w.b = append(w.b, '{')
		w.str(&so, "name", s.Name)
		w.str(&so, "version", s.Version)
		list(w, &so, "attributes", s.Attributes, w.keyValue)
		w.uint32(&so, "droppedAttributesCount", s.DroppedAttributesCount)
		w.b = append(w.b, '}')
	}
	list(w, &o, "spans", ss.Spans, w.span)
	w.str(&o, "schemaUrl", ss.SchemaUrl)
	w.b = append(w.b, '}')
}

func (w *jsonWriter) span(s *tracepb.Span) {
	var o obj
	w.b = append(w.b, '{')
	w.id(&o, "traceId", s.TraceId)
	w.id(&o, "spanId", s.SpanId)
	w.str(&o, "traceState", s.TraceState)
	w.id(&o, "parentSpanId", s.ParentSpanId)
	w.str(&o, "name", s.Name)
	w.int32(&o, "kind", int32(s.Kind))
	w.uint64(&o, "startTimeUnixNano", s.StartTimeUnixNano)
	w.uint64(&o, "endTimeUnixNano", s.EndTimeUnixNano)
	list(w, &o, "attributes", s.Attributes, w.keyValue)
	w.uint32(&o, "droppedAttributesCount", s.DroppedAttributesCount)
	list(w, &o, "events", s.Events, w.event)
	w.uint32(&o, "droppedEventsCount", s.DroppedEventsCount)
	list(w, &o, "links", s.Links, w.link)
	w.uint32(&o, "droppedLinksCount", s.DroppedLinksCount)
	if st := s.Status; st != nil {
		w.field(&o, "status")
		var so obj
		w.b = append(w.b, '{')
		w.str(&so, "message", st.Message)
		w.int32(&so, "code", int32(st.Code))
		w.b = append(w.b, '}')
	}
	w.uint32(&o, "flags", s.Flags)
	w.b = append(w.b, '}')
}

func (w *jsonWriter) event(e *tracepb.Span_Event) {
	var o obj
	w.b = append(w.b, '{')
	w.uint64(&o, "timeUnixNano", e.TimeUnixNano)
	w.str(&o, "name", e.Name)
	list(w, &o, "attributes", e.Attributes, w.keyValue)
	w.uint32(&o, "droppedAttributesCount", e.DroppedAttributesCount)
	w.b = append(w.b, '}')
}

func (w *jsonWriter) link(l *tracepb.Span_Link) {
	var o obj
	w.b = append(w.b, '{')
	w.id(&o, "traceId", l.TraceId)
	w.id(&o, "spanId", l.SpanId)
	w.str(&o, "traceState", l.TraceState)
	list(w, &o, "attributes", l.Attributes, w.keyValue)
	w.uint32(&o, "droppedAttributesCount", l.DroppedAttributesCount)
	w.uint32(&o, "flags", l.Flags)
	w.b = append(w.b, '}')
}

func (w *jsonWriter) keyValue(kv *commonpb.KeyValue) {
	var o obj
	w.b = append(w.b, '{')
	w.str(&o, "key", kv.Key)
	if kv.Value != nil {
		w.field(&o, "value")
		w.anyValue(kv.Value)
	}
	w.int32(&o, "keyStrindex", kv.KeyStrindex)
	w.b = append(w.b, '}')
}

func (w *jsonWriter) anyValue(v *commonpb.AnyValue) {
	var o obj
	w.b = append(w.b, '{')
	// One-of members are written even when they hold a zero value.
	switch x := v.Value.(type) {
	case *commonpb.AnyValue_StringValue:
		w.field(&o, "stringValue")
		w.string(x.StringValue)
	case *commonpb.AnyValue_BoolValue:
		w.field(&o, "boolValue")
		w.b = strconv.AppendBool(w.b, x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		w.field(&o, "intValue")
		w.b = append(w.b, '"')
		w.b = strconv.AppendInt(w.b, x.IntValue, 10)
		w.b = append(w.b, '"')
	case *commonpb.AnyValue_DoubleValue:
		w.field(&o, "doubleValue")
		w.float(x.DoubleValue)
	case *commonpb.AnyValue_ArrayValue:
		w.field(&o, "arrayValue")
		var ao obj
		w.b = append(w.b, '{')
		if x.ArrayValue != nil {
			list(w, &ao, "values", x.ArrayValue.Values, w.anyValue)
		}
		w.b = append(w.b, '}')
	case *commonpb.AnyValue_KvlistValue:
		w.field(&o, "kvlistValue")
		var ko obj
		w.b = append(w.b, '{')
		if x.KvlistValue != nil {
			list(w, &ko, "values", x.KvlistValue.Values, w.keyValue)
		}
		w.b = append(w.b, '}')
	case *commonpb.AnyValue_BytesValue:
		w.field(&o, "bytesValue")
		w.b = append(w.b, '"')
		w.b = base64.StdEncoding.AppendEncode(w.b, x.BytesValue)
		w.b = append(w.b, '"')
	case *commonpb.AnyValue_StringValueStrindex:
		w.field(&o, "stringValueStrindex")
		w.b = strconv.AppendInt(w.b, int64(x.StringValueStrindex), 10)
	}
	w.b = append(w.b, '}')
}

// float writes a double as the Protobuf JSON mapping does: special values
// as strings, others as the shortest number that reads back the same.
func (w *jsonWriter) float(f float64) {
	switch {
	case math.IsNaN(f):
		w.b = append(w.b, `"NaN"`...)
	case math.IsInf(f, 1):
		w.b = append(w.b, `"Infinity"`...)
	case math.IsInf(f, -1):
		w.b = append(w.b, `"-Infinity"`...)
	default:
		format := byte('f')
		if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
			format = 'e'
		}
		w.b = strconv.AppendFloat(w.b, f, format, -1, 64)
	}
}

const hexDigits = "0123456789abcdef"

// string writes s, which is valid UTF-8 since it was decoded from protobuf,
// as a JSON string.
func (w *jsonWriter) string(s string) {
	w.b = append(w.b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == '\u2028' || r == '\u2029' {
				// Valid JSON, but not valid JavaScript: escape them.
				w.b = append(w.b, s[start:i]...)
				w.b = append(w.b, `\u202`...)
				w.b = append(w.b, hexDigits[r&0xf])
				start = i + size
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		w.b = append(w.b, s[start:i]...)
		switch c {
		case '"', '\\':
			w.b = append(w.b, '\\', c)
		case '\n':
			w.b = append(w.b, '\\', 'n')
		case '\r':
			w.b = append(w.b, '\\', 'r')
		case '\t':
			w.b = append(w.b, '\\', 't')
		default:
			w.b = append(w.b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	w.b = append(w.b, s[start:]...)
	w.b = append(w.b, '"')
}
