package otlpenc

import (
	"reflect"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracekeeper/tracekeeper/internal/mirror"
)

// spanData is what the encoder reads from a span. Its fields are, name for
// name, type for type and in order, those of the SDK's own ReadOnlySpan,
// the unexported snapshot of go.opentelemetry.io/otel/sdk/trace that a
// BatchSpanProcessor hands its exporter.
//
// Reading a snapshot through the ReadOnlySpan interface is dear: its
// methods have value receivers and the SDK hands out pointers, so each of
// the fifteen calls an encoder makes copies the whole 400-byte struct. For
// a span of that type, once its layout has been checked to be the same as
// spanData's (sdkLayout), the encoder reads the struct in place instead;
// any other ReadOnlySpan, or a snapshot whose layout has changed, is read
// through its methods into a spanData.
type spanData struct {
	name                  string
	spanContext           trace.SpanContext
	parent                trace.SpanContext
	spanKind              trace.SpanKind
	startTime             time.Time
	endTime               time.Time
	attributes            []attribute.KeyValue
	events                []sdktrace.Event
	links                 []sdktrace.Link
	status                sdktrace.Status
	childSpanCount        int
	droppedAttributeCount int
	droppedEventCount     int
	droppedLinkCount      int
	resource              *resource.Resource
	instrumentationScope  instrumentation.Scope
}

// read fills d from the methods of s.
func (d *spanData) read(s sdktrace.ReadOnlySpan) {
	*d = spanData{
		name:                  s.Name(),
		spanContext:           s.SpanContext(),
		parent:                s.Parent(),
		spanKind:              s.SpanKind(),
		startTime:             s.StartTime(),
		endTime:               s.EndTime(),
		attributes:            s.Attributes(),
		events:                s.Events(),
		links:                 s.Links(),
		status:                s.Status(),
		droppedAttributeCount: s.DroppedAttributes(),
		droppedEventCount:     s.DroppedEvents(),
		droppedLinkCount:      s.DroppedLinks(),
		resource:              s.Resource(),
		instrumentationScope:  s.InstrumentationScope(),
	}
}

const sdkTracePkg = "go.opentelemetry.io/otel/sdk/trace"

// snapshotReader reads spans in place when they are SDK snapshots of the
// layout spanData mirrors. It learns the snapshot type from the first SDK
// span it sees and checks its layout once. The zero value is ready.
type snapshotReader struct {
	typ     reflect.Type // the SDK's snapshot pointer type, once checked
	checked bool         // typ's layout has been checked
	ok      bool         // and it matches spanData's
}

// inPlace returns s's own data when s is an SDK snapshot of the layout
// spanData mirrors, and nil otherwise.
func (r *snapshotReader) inPlace(s sdktrace.ReadOnlySpan) *spanData {
	t := reflect.TypeOf(s)
	if t != r.typ {
		if r.checked || !isSnapshot(t) {
			return nil
		}
		r.typ, r.checked = t, true
		r.ok = mirror.Matches(t.Elem(), reflect.TypeFor[spanData]())
	}
	if !r.ok {
		return nil
	}
	return (*spanData)(reflect.ValueOf(s).UnsafePointer())
}

// isSnapshot reports whether t is a pointer to the SDK's snapshot type.
func isSnapshot(t reflect.Type) bool {
	return t.Kind() == reflect.Pointer && t.Elem().Name() == "snapshot" && t.Elem().PkgPath() == sdkTracePkg
}
