package mirror

import (
	"context"
	"reflect"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// onStart is a processor that calls f with each span it sees in OnStart.
type onStart struct{ f func(sdktrace.ReadWriteSpan) }

func (p onStart) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) { p.f(s) }
func (onStart) OnEnd(sdktrace.ReadOnlySpan)                           {}
func (onStart) Shutdown(context.Context) error                        { return nil }
func (onStart) ForceFlush(context.Context) error                      { return nil }

// hiddenLive hides the concrete type of a recording span.
type hiddenLive struct{ sdktrace.ReadWriteSpan }

// TestLiveOf checks that the SDK's recording spans are read in place,
// which needs Live to mirror the leading fields of the SDK's recording
// span exactly: when an SDK upgrade changes them this test fails (readers
// then fall back to the span's methods) until Live follows. What is read
// in place must be what the methods return (without duplicate keys, the
// raw attributes are the attributes), and a span of any other type is
// not read in place.
func TestLiveOf(t *testing.T) {
	var (
		got  []*Live
		seen sdktrace.ReadWriteSpan
		wg   sync.WaitGroup
	)
	check := func(s sdktrace.ReadWriteSpan) {
		seen = s
		got = make([]*Live, 4)
		for i := range got { // learning the type is safe from many goroutines
			wg.Add(1)
			go func() { defer wg.Done(); got[i] = LiveOf(s) }()
		}
		wg.Wait()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(onStart{check}))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	_, s := tp.Tracer("mirror").Start(context.Background(), "op",
		trace.WithAttributes(attribute.String("k", "v"), attribute.Int("n", 1)))
	defer s.End()
	for _, l := range got {
		if l == nil {
			t.Fatal("the SDK's recording span no longer has Live's leading fields: update Live")
		}
	}
	l := got[0]
	l.Lock()
	name, raw, sc := l.Name(), l.RawAttributes(), *l.SpanContext()
	l.Unlock()
	if name != seen.Name() || !sc.Equal(seen.SpanContext()) || !reflect.DeepEqual(raw, seen.Attributes()) {
		t.Fatalf("in place %q %v %v, through methods %q %v %v", name, sc, raw, seen.Name(), seen.SpanContext(), seen.Attributes())
	}
	if KnownLive(seen) != l {
		t.Fatal("KnownLive does not read a recording span in place once LiveOf has")
	}
	if LiveOf(hiddenLive{seen}) != nil || LiveOf(nil) != nil || KnownLive(hiddenLive{seen}) != nil || KnownLive(nil) != nil {
		t.Fatal("a span of another type is read in place")
	}
}
