package sampler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// blockingProcessor is a downstream whose OnEnd blocks until released. The
// first OnEnd calls onFirst before blocking.
type blockingProcessor struct {
	entered chan struct{} // one value per OnEnd entered
	release chan struct{} // closed to let every OnEnd return
	onFirst func()
	once    sync.Once

	mu    sync.Mutex
	ended int
}

func newBlockingProcessor(onFirst func()) *blockingProcessor {
	return &blockingProcessor{entered: make(chan struct{}, 1024), release: make(chan struct{}), onFirst: onFirst}
}

func (p *blockingProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

func (p *blockingProcessor) OnEnd(sdktrace.ReadOnlySpan) {
	p.entered <- struct{}{}
	p.once.Do(p.onFirst)
	<-p.release
	p.mu.Lock()
	p.ended++
	p.mu.Unlock()
}

func (p *blockingProcessor) Shutdown(context.Context) error   { return nil }
func (p *blockingProcessor) ForceFlush(context.Context) error { return nil }

func (p *blockingProcessor) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ended
}

// returnsWhileBlocked runs f and fails the test if f has not returned
// while the downstream is still blocked. The guard only catches a hang.
func returnsWhileBlocked(t *testing.T, what string, f func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- f() }()
	select {
	case err := <-errc:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not return while the downstream was blocked", what)
		return nil
	}
}

const (
	deadlineTraces   = 3
	deadlineChildren = 2 // spans per trace: the root and its children
	deadlineSpans    = deadlineTraces * (1 + deadlineChildren)
)

func holdErrorTraces(h *harness) {
	for range deadlineTraces {
		_, r := h.trace(context.Background(), deadlineChildren, 0)
		r.End()
	}
}

// ForceFlush returns when its context ends although the downstream is
// blocked in OnEnd, says what is left, and the kept spans it had in hand
// are handed on once the downstream returns.
func TestForceFlushReturnsByItsDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	down := newBlockingProcessor(cancel) // the deadline passes while the downstream works
	h := newHarnessTo(t, down)
	holdErrorTraces(h)

	err := returnsWhileBlocked(t, "ForceFlush", func() error { return h.keep.ForceFlush(ctx) })
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "still held") {
		t.Fatalf("ForceFlush = %v, want context.Canceled and what was left", err)
	}
	if got := down.count(); got != 0 {
		t.Fatalf("the downstream finished %d spans while blocked", got)
	}

	close(down.release)
	if err := h.keep.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.keep.workers.Wait()
	st := h.keep.Stats()
	if got := down.count(); got != deadlineSpans || st.SpansRescued != deadlineSpans || st.TracesHeld != 0 {
		t.Errorf("downstream got %d spans, rescued %d, held %d; want %d, %d, 0",
			got, st.SpansRescued, st.TracesHeld, deadlineSpans, deadlineSpans)
	}
}

// Shutdown returns when its context ends although the downstream is
// blocked, releases and counts what is still held, and hands nothing on
// after its deadline.
func TestShutdownReturnsByItsDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	down := newBlockingProcessor(cancel)
	h := newHarnessTo(t, down)
	holdErrorTraces(h)

	err := returnsWhileBlocked(t, "Shutdown", func() error { return h.keep.Shutdown(ctx) })
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "released undecided") {
		t.Fatalf("Shutdown = %v, want context.Canceled and what was released", err)
	}
	st := h.keep.Stats()
	if st.TracesHeld != 0 || st.SpansHeld != 0 {
		t.Errorf("still held after Shutdown: %+v", st)
	}
	// One span is in the downstream's OnEnd and is delivered when it
	// returns; the spans detached with it are in hand and dropped then;
	// the rest were released at the deadline. The error says how many of
	// each, exactly.
	var released, inHand uint64
	msg := err.Error()
	msg = msg[strings.Index(msg, ": context canceled: ")+len(": context canceled: "):]
	if _, serr := fmt.Sscanf(msg, "%d held spans released undecided, %d spans in hand", &released, &inHand); serr != nil {
		t.Fatalf("Shutdown's error %q: %v", err, serr)
	}
	if st.DroppedShutdown != released || released+inHand != deadlineSpans-1 || inHand < 1 {
		t.Errorf("at the deadline: dropped %d; the error says %d released and %d in hand; want %d in all", st.DroppedShutdown, released, inHand, deadlineSpans-1)
	}

	close(down.release)
	h.keep.workers.Wait()
	st = h.keep.Stats()
	if got := down.count(); got != 1 {
		t.Errorf("downstream got %d spans, want only the one it was given before the deadline", got)
	}
	if st.DroppedShutdown != released+inHand || st.SpansRescued != 1 {
		t.Errorf("dropped %d, rescued %d; want %d, as the error said, and 1", st.DroppedShutdown, st.SpansRescued, released+inHand)
	}
}

// The collection after Shutdown sees what Shutdown did: the decisions of
// the final flush, and the spans dropped when its context ended; the
// figures match Stats.
func TestMetricsOutliveShutdown(t *testing.T) {
	tests := []struct {
		name   string
		cancel bool
	}{
		{name: "final flush"},
		{name: "deadline passed", cancel: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			defer func() { _ = mp.Shutdown(context.Background()) }()
			h := newHarness(t, WithMeterProvider(mp))
			holdErrorTraces(h)
			_ = collectMetrics(t, reader) // a collection before, as a periodic reader makes

			ctx, cancel := context.WithCancel(context.Background())
			if tt.cancel {
				cancel()
			}
			defer cancel()
			_ = h.keep.Shutdown(ctx)
			h.keep.workers.Wait()
			st := h.keep.Stats()
			got := collectMetrics(t, reader)

			wants := []struct {
				metric, attrs string
				want          uint64
			}{
				{metricDecided, "tracekeeper.sampler.decision=error", st.KeptByError},
				{metricRescued, "", st.SpansRescued},
				{metricDropped, "tracekeeper.sampler.reason=shutdown", st.DroppedShutdown},
			}
			for _, w := range wants {
				if v, ok := got[w.metric][w.attrs]; !ok || uint64(v) != w.want {
					t.Errorf("after Shutdown %s{%s} = %d (present %v), Stats say %d", w.metric, w.attrs, v, ok, w.want)
				}
			}
			if tt.cancel && st.DroppedShutdown != deadlineSpans {
				t.Errorf("DroppedShutdown = %d, want %d", st.DroppedShutdown, deadlineSpans)
			}
			if !tt.cancel && st.KeptByError != deadlineTraces {
				t.Errorf("KeptByError = %d, want %d", st.KeptByError, deadlineTraces)
			}
		})
	}
}
