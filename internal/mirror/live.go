package mirror

import (
	"reflect"
	"sync"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// Live is the leading part of a span being recorded: its fields are, name
// for name, type for type and in order, the first fields of the SDK's own
// ReadWriteSpan, the unexported recording span that the SDK hands to
// OnStart. The fields after those are of types of the SDK's own, which a
// mirror cannot name; Live never reads past its own fields.
//
// Reading a recording span through its methods takes and releases its
// lock once per call, and Attributes also marks the span's attribute array
// as shared, so that the SDK copies it at the next SetAttributes. LiveOf
// returns the span's own fields as a *Live instead, once the layout has
// been checked; the fields are read under the span's own lock (Lock,
// Unlock), as the methods read them.
type Live struct {
	embedded.Span

	mu                sync.Mutex
	parent            trace.SpanContext
	spanKind          trace.SpanKind
	name              string
	startTime         time.Time
	endTime           time.Time
	status            sdktrace.Status
	childSpanCount    int
	spanContext       trace.SpanContext
	attributes        []attribute.KeyValue
	droppedAttributes int
	logDropAttrsOnce  sync.Once
	attributesDirty   bool
	attributesShared  bool
}

// Lock takes the span's lock, the one its methods take.
func (l *Live) Lock() { l.mu.Lock() }

// Unlock releases the span's lock.
func (l *Live) Unlock() { l.mu.Unlock() }

// The accessors read a Live in place, with its lock held; a Live is never
// written.

// Name returns the span's name.
func (l *Live) Name() string { return l.name }

// SpanContext returns the span's SpanContext, which the SDK never changes
// once the span is made.
func (l *Live) SpanContext() *trace.SpanContext { return &l.spanContext }

// RawAttributes returns the span's attributes as the SDK holds them: in
// the order they were set, and, unlike what the span's Attributes method
// returns, possibly with more than one attribute of a key (the last of
// which is the one the span keeps). The array may be changed in place by
// the SDK once the lock is released.
func (l *Live) RawAttributes() []attribute.KeyValue { return l.attributes }

// lives learns the SDK's recording span type.
var lives = learner{is: sdkType("recordingSpan"), fits: func(t reflect.Type) bool { return MatchesPrefix(t, reflect.TypeFor[Live]()) }}

// LiveOf returns s's own fields when s is an SDK recording span whose
// leading fields have the layout Live mirrors, and nil otherwise. It is
// safe for concurrent use.
func LiveOf(s sdktrace.ReadWriteSpan) *Live {
	if d := KnownLive(s); d != nil {
		return d
	}
	return (*Live)(lives.of((*ifaceWords)(unsafe.Pointer(&s)), reflect.ValueOf(s)))
}

// KnownLive is LiveOf for a span of the type already learnt, and nil for any
// other, without learning: a test of the span's type word, small enough
// to be inlined into a hot path that calls LiveOf when it returns nil.
func KnownLive(s sdktrace.ReadWriteSpan) *Live {
	return (*Live)(lives.known((*ifaceWords)(unsafe.Pointer(&s))))
}
