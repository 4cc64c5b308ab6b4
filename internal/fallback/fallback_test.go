package fallback

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func copyJSON(dst, body []byte) ([]byte, error) { return append(dst, body...), nil }

// newReporter returns a Reporter whose log is observed in logs; written
// receives once per entry logged.
func newReporter(t *testing.T, w *gate) (r *Reporter, logs *observer.ObservedLogs, written <-chan struct{}) {
	core, logs := observer.New(zapcore.InfoLevel)
	ch := make(chan struct{}, 64)
	core = zapcore.RegisterHooks(core, func(zapcore.Entry) error {
		select {
		case ch <- struct{}{}:
		default:
		}
		return nil
	})
	cfg := Config{
		Log: zap.New(core), Clock: clockwork.NewFakeClock(), Interval: time.Hour,
		Component: "test", Reasons: []string{"queue_full", "shutdown"},
		Convert: copyJSON, WriterBudget: 100,
	}
	if w != nil {
		cfg.Writer = w
	}
	return New(cfg), logs, ch
}

// gate is a writer that blocks until opened.
type gate struct {
	open   chan struct{}
	writes atomic.Int64
	lines  atomic.Value
}

func (g *gate) Write(p []byte) (int, error) {
	<-g.open
	g.writes.Add(1)
	g.lines.Store(string(p))
	return len(p), nil
}

// TestDropsAreAggregatedAndReportedLast checks that the first drop is
// reported at once, and that what follows within the interval is
// aggregated into one report, written after the notes and warnings.
func TestDropsAreAggregatedAndReportedLast(t *testing.T) {
	r, logs, written := newReporter(t, nil)
	r.Dropped(0, 3, errors.New("full"))
	<-written
	r.Dropped(0, 2, errors.New("still full"))
	r.Dropped(1, 1, nil)
	r.Warn("retrying", "first")
	r.Warn("retrying", "second")
	r.Note("delivery resumed")
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	all := logs.All()
	if len(all) != 4 {
		t.Fatalf("want the first drop report, then a note, a warning and a drop report: %v", all)
	}
	if m := all[0].ContextMap(); all[0].Message != "test: spans dropped" || m["dropped"] != int64(3) || m["queue_full_cause"] != "full" {
		t.Fatalf("first report %q %v, want the first 3 spans dropped", all[0].Message, m)
	}
	last := all[3]
	if last.Message != "test: spans dropped" {
		t.Fatalf("the drops are not reported last: %v", all)
	}
	m := last.ContextMap()
	if m["dropped"] != int64(3) || m["queue_full"] != int64(2) || m["queue_full_cause"] != "still full" || m["shutdown"] != int64(1) {
		t.Fatalf("drop report %v", m)
	}
	if w := all[2].ContextMap(); w["count"] != int64(2) || w["last"] != "second" {
		t.Fatalf("warning %v", w)
	}
}

// TestLoggedEntriesComeFirstAsWritten checks that Log's entries are
// written as they are, in order, before the rest of their report, and
// that at most 16 are kept between two reports.
func TestLoggedEntriesComeFirstAsWritten(t *testing.T) {
	r, logs, _ := newReporter(t, nil)
	r.Note("a note")
	for i := range 20 {
		r.Log(zapcore.ErrorLevel, "invalid configuration", zap.Int("i", i))
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	all := logs.All()
	if len(all) != 17 || all[16].Message != "test: a note" {
		t.Fatalf("want 16 entries, then the note: %v", all)
	}
	for i, e := range all[:16] {
		if e.Message != "invalid configuration" || e.Level != zapcore.ErrorLevel || e.ContextMap()["i"] != int64(i) {
			t.Fatalf("entry %d: %v", i, e)
		}
	}
}

func TestABlockedWriterBlocksNoCaller(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	r, _, _ := newReporter(t, g)
	for range 10 {
		r.WriteDropped([]byte("0123456789"), []byte("0123456789")) // 20 bytes each, budget 100
	}
	// Whatever the writer holds, at most 100 bytes wait; the rest is counted.
	if n := r.Unwritten(); n < 5 {
		t.Fatalf("unwritten = %d, want at least 5 of 10 refused by a 100-byte budget", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v, want the ctx error while the writer is blocked", err)
	}
	r.WriteDropped([]byte("late"))
	close(g.open)
	// Closing again waits for the goroutines, which end once the writer
	// returns; what was abandoned is counted.
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := g.writes.Load() + r.Unwritten(); got != 11 {
		t.Fatalf("written %d + unwritten %d != 11 requests handed over", g.writes.Load(), r.Unwritten())
	}
}

func TestWrittenLinesAreConverted(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	core, _ := observer.New(zapcore.InfoLevel)
	r := New(Config{Log: zap.New(core), Clock: clockwork.NewRealClock(), Interval: time.Hour, Reasons: []string{"x"},
		Writer: g, WriterBudget: 1 << 10,
		Convert: func(dst, body []byte) ([]byte, error) { return append(append(dst, '<'), append(body, '>')...), nil }})
	r.WriteDropped([]byte("ab"), []byte("cd"))
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := g.lines.Load(); got != "<abcd>\n" {
		t.Fatalf("line %q", got)
	}
}

// stalled is a zap core whose writes block until released.
type stalled struct {
	zapcore.LevelEnabler
	release chan struct{}
}

func (c stalled) With([]zapcore.Field) zapcore.Core { return c }
func (c stalled) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(e, c)
}
func (c stalled) Write(zapcore.Entry, []zapcore.Field) error { <-c.release; return nil }
func (c stalled) Sync() error                                { return nil }

func TestAStalledLoggerBlocksNoCaller(t *testing.T) {
	release := make(chan struct{})
	r := New(Config{Log: zap.New(stalled{zapcore.DebugLevel, release}), Clock: clockwork.NewRealClock(),
		Interval: time.Millisecond, Reasons: []string{"x"}})
	for i := range 1000 {
		r.Dropped(0, 1, errors.New("x"))
		r.Warn("w", strings.Repeat("x", i%10))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v", err)
	}
	close(release)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// enteredGate is a gate that says when a write has begun.
type enteredGate struct {
	gate
	entered chan struct{}
}

func (g *enteredGate) Write(p []byte) (int, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	return g.gate.Write(p)
}

// The requests still waiting for a writer that is busy when Close's
// deadline passes are counted in Unwritten at that moment, not when (or
// if) the writer returns.
func TestRequestsBehindABusyWriterAreCountedAtTheDeadline(t *testing.T) {
	g := &enteredGate{gate: gate{open: make(chan struct{})}, entered: make(chan struct{}, 1)}
	core, _ := observer.New(zapcore.InfoLevel)
	r := New(Config{
		Log: zap.New(core), Clock: clockwork.NewFakeClock(), Interval: time.Hour,
		Component: "test", Reasons: []string{"queue_full"}, Convert: copyJSON,
		WriterBudget: 100, Writer: g,
	})
	r.WriteDropped([]byte("first"))
	<-g.entered // the writer holds the first request
	for range 4 {
		r.WriteDropped([]byte("0123456789"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v, want the ctx error", err)
	}
	if n := r.Unwritten(); n != 4 {
		t.Fatalf("unwritten = %d at the deadline, want the 4 requests behind the busy writer", n)
	}
	close(g.open)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w, n := g.writes.Load(), r.Unwritten(); w != 1 || n != 4 {
		t.Fatalf("written %d, unwritten %d; want the one being written written and 4 unwritten", w, n)
	}
}
