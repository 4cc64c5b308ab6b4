package mirror

import (
	"reflect"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Span is a finished span's data. Its fields are, name for name, type for
// type and in order, those of the SDK's own ReadOnlySpan, the unexported
// snapshot of go.opentelemetry.io/otel/sdk/trace that the SDK hands to
// OnEnd and a BatchSpanProcessor hands its exporter.
//
// Reading a snapshot through the ReadOnlySpan interface is dear: its
// methods have value receivers and the SDK hands out pointers, so each
// call copies the whole 400-byte struct. SpanOf returns a snapshot's own
// data as a *Span instead, once its layout has been checked.
type Span struct {
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

// The accessors read a Span in place; a Span is never written.

func (d *Span) Name() string                                 { return d.name }
func (d *Span) SpanContext() *trace.SpanContext              { return &d.spanContext }
func (d *Span) Parent() *trace.SpanContext                   { return &d.parent }
func (d *Span) SpanKind() trace.SpanKind                     { return d.spanKind }
func (d *Span) StartTime() time.Time                         { return d.startTime }
func (d *Span) EndTime() time.Time                           { return d.endTime }
func (d *Span) Attributes() []attribute.KeyValue             { return d.attributes }
func (d *Span) Events() []sdktrace.Event                     { return d.events }
func (d *Span) Links() []sdktrace.Link                       { return d.links }
func (d *Span) Status() sdktrace.Status                      { return d.status }
func (d *Span) ChildSpanCount() int                          { return d.childSpanCount }
func (d *Span) DroppedAttributes() int                       { return d.droppedAttributeCount }
func (d *Span) DroppedEvents() int                           { return d.droppedEventCount }
func (d *Span) DroppedLinks() int                            { return d.droppedLinkCount }
func (d *Span) Resource() *resource.Resource                 { return d.resource }
func (d *Span) InstrumentationScope() *instrumentation.Scope { return &d.instrumentationScope }

// ReadSpan fills d from the methods of s, for a span SpanOf cannot read in
// place.
func ReadSpan(s sdktrace.ReadOnlySpan, d *Span) {
	*d = Span{
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
		childSpanCount:        s.ChildSpanCount(),
		droppedAttributeCount: s.DroppedAttributes(),
		droppedEventCount:     s.DroppedEvents(),
		droppedLinkCount:      s.DroppedLinks(),
		resource:              s.Resource(),
		instrumentationScope:  s.InstrumentationScope(),
	}
}

const sdkTracePkg = "go.opentelemetry.io/otel/sdk/trace"

// snapshots learns the SDK's snapshot type.
var snapshots = learner{is: sdkType("snapshot"), fits: func(t reflect.Type) bool { return Matches(t, reflect.TypeFor[Span]()) }}

// SpanOf returns s's own data when s is an SDK snapshot of the layout Span
// mirrors, and nil otherwise. It is safe for concurrent use.
func SpanOf(s sdktrace.ReadOnlySpan) *Span {
	if d := KnownSpan(s); d != nil {
		return d
	}
	return (*Span)(snapshots.of((*ifaceWords)(unsafe.Pointer(&s)), reflect.ValueOf(s)))
}

// KnownSpan is SpanOf for a span of the type already learnt, and nil for any
// other, without learning: a test of the span's type word, small enough
// to be inlined into a hot path that calls SpanOf when it returns nil.
func KnownSpan(s sdktrace.ReadOnlySpan) *Span {
	return (*Span)(snapshots.known((*ifaceWords)(unsafe.Pointer(&s))))
}
