package mirror

import (
	"reflect"
	"sync"
	"sync/atomic"
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

// liveKind is what LiveOf learnt about the SDK's recording span type from
// the first span it saw, as snapshotKind is for snapshots.
type liveKind struct {
	typ  reflect.Type
	ok   bool
	itab unsafe.Pointer
}

var live atomic.Pointer[liveKind]

// liveItab is the type word of the kind learnt plus one, once it is known
// to have the mirrored layout, or 0, which no type word plus one is, not
// even that of a nil interface value.
var liveItab atomic.Uintptr

// LiveOf returns s's own fields when s is an SDK recording span whose
// leading fields have the layout Live mirrors, and nil otherwise. It is
// safe for concurrent use.
func LiveOf(s sdktrace.ReadWriteSpan) *Live {
	if d := KnownLive(s); d != nil {
		return d
	}
	return liveOfByType(s)
}

// KnownLive is LiveOf for a span of the type already learnt, and nil for any
// other, without learning: a test of the span's type word, small enough
// to be inlined into a hot path that calls LiveOf when it returns nil.
func KnownLive(s sdktrace.ReadWriteSpan) *Live {
	w := (*ifaceWords)(unsafe.Pointer(&s))
	if uintptr(w.itab)+1 != liveItab.Load() {
		return nil
	}
	return (*Live)(w.data)
}

// liveOfByType is LiveOf for a span whose type word is not the one learnt.
func liveOfByType(s sdktrace.ReadWriteSpan) *Live {
	if k := live.Load(); k != nil && k.ok && k.typ == reflect.TypeOf(s) {
		return (*Live)(reflect.ValueOf(s).UnsafePointer())
	}
	return learnLive(s)
}

// learnLive is LiveOf for a span of a type other than the recording span
// type learnt, or before one is.
func learnLive(s sdktrace.ReadWriteSpan) *Live {
	t := reflect.TypeOf(s)
	k := live.Load()
	if k == nil {
		if !isRecording(t) {
			return nil
		}
		k = &liveKind{typ: t, ok: MatchesPrefix(t.Elem(), reflect.TypeFor[Live]())}
		if w := (*ifaceWords)(unsafe.Pointer(&s)); w.data == reflect.ValueOf(s).UnsafePointer() && w.itab != nil {
			k.itab = w.itab
		}
		if !live.CompareAndSwap(nil, k) {
			k = live.Load()
		} else if k.ok && k.itab != nil {
			liveItab.Store(uintptr(k.itab) + 1)
		}
	}
	if !k.ok || k.typ != t {
		return nil
	}
	return (*Live)(reflect.ValueOf(s).UnsafePointer())
}

// isRecording reports whether t is a pointer to the SDK's recording span
// type.
func isRecording(t reflect.Type) bool {
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().Name() == "recordingSpan" && t.Elem().PkgPath() == sdkTracePkg
}
