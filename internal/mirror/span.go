package mirror

import (
	"reflect"
	"sync/atomic"
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
		droppedAttributeCount: s.DroppedAttributes(),
		droppedEventCount:     s.DroppedEvents(),
		droppedLinkCount:      s.DroppedLinks(),
		resource:              s.Resource(),
		instrumentationScope:  s.InstrumentationScope(),
	}
}

const sdkTracePkg = "go.opentelemetry.io/otel/sdk/trace"

// snapshotKind is what SpanOf learnt about the SDK's snapshot type from
// the first one it saw: the pointer type, and whether it has Span's
// layout. There is one such type per program, so it is learnt once.
type snapshotKind struct {
	typ reflect.Type
	ok  bool
	// itab is the type word of a ReadOnlySpan holding such a snapshot,
	// or nil if an interface value was not found to be made of a type
	// word and a data word: SpanOf then compares reflect types instead.
	itab unsafe.Pointer
}

// ifaceWords is the layout of a non-empty interface value.
type ifaceWords struct {
	itab, data unsafe.Pointer
}

var snapshot atomic.Pointer[snapshotKind]

// snapshotItab is the type word of the kind learnt plus one, once it is known
// to have the mirrored layout, or 0, which no type word plus one is, not
// even that of a nil interface value.
var snapshotItab atomic.Uintptr

// SpanOf returns s's own data when s is an SDK snapshot of the layout Span
// mirrors, and nil otherwise. It is safe for concurrent use.
func SpanOf(s sdktrace.ReadOnlySpan) *Span {
	if d := KnownSpan(s); d != nil {
		return d
	}
	return spanOfByType(s)
}

// KnownSpan is SpanOf for a span of the type already learnt, and nil for any
// other, without learning: a test of the span's type word, small enough
// to be inlined into a hot path that calls SpanOf when it returns nil.
func KnownSpan(s sdktrace.ReadOnlySpan) *Span {
	w := (*ifaceWords)(unsafe.Pointer(&s))
	if uintptr(w.itab)+1 != snapshotItab.Load() {
		return nil
	}
	return (*Span)(w.data)
}

// spanOfByType is SpanOf for a span whose type word is not the one learnt.
func spanOfByType(s sdktrace.ReadOnlySpan) *Span {
	if k := snapshot.Load(); k != nil && k.ok && k.typ == reflect.TypeOf(s) {
		return (*Span)(reflect.ValueOf(s).UnsafePointer())
	}
	return learn(s)
}

// learn is SpanOf for a span of a type other than the snapshot type
// learnt, or before one is.
func learn(s sdktrace.ReadOnlySpan) *Span {
	t := reflect.TypeOf(s)
	k := snapshot.Load()
	if k == nil {
		if !isSnapshot(t) {
			return nil
		}
		k = &snapshotKind{typ: t, ok: Matches(t.Elem(), reflect.TypeFor[Span]())}
		if w := (*ifaceWords)(unsafe.Pointer(&s)); w.data == reflect.ValueOf(s).UnsafePointer() && w.itab != nil {
			k.itab = w.itab
		}
		if !snapshot.CompareAndSwap(nil, k) {
			k = snapshot.Load()
		} else if k.ok && k.itab != nil {
			snapshotItab.Store(uintptr(k.itab) + 1)
		}
	}
	if !k.ok || k.typ != t {
		return nil
	}
	return (*Span)(reflect.ValueOf(s).UnsafePointer())
}

// isSnapshot reports whether t is a pointer to the SDK's snapshot type.
func isSnapshot(t reflect.Type) bool {
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().Name() == "snapshot" && t.Elem().PkgPath() == sdkTracePkg
}
