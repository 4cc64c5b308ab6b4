// Package fallback is the exporter's fallback reporting: the aggregated
// log of drops and failures, and the optional writer of dropped requests.
//
// Nothing a caller does here waits on the logger or the writer. Events are
// counted under a short lock and written by the reporter's own goroutine at
// most once per interval (the first one after a quiet interval at once).
// Dropped requests for the writer are copied into a bounded hand-off and
// converted and written by a second goroutine; what the hand-off cannot
// take is counted, never waited for.
package fallback

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Config configures a Reporter.
type Config struct {
	Log      *zap.Logger
	Clock    clockwork.Clock
	Interval time.Duration
	// Component prefixes every message, e.g. "tracekeeper exporter".
	Component string
	// Reasons names the drop reasons, by index.
	Reasons []string

	// Writer, when set, receives each dropped request, converted by
	// Convert (which appends to its first argument), as one line.
	Writer  io.Writer
	Convert func(dst, body []byte) ([]byte, error)
	// WriterBudget bounds the bytes waiting for the writer.
	WriterBudget int64
}

// Reporter aggregates and writes reports. Its methods are safe for
// concurrent use and never block on the logger or the writer.
type Reporter struct {
	cfg Config

	mu        sync.Mutex
	drops     []int64
	causes    []error
	warnings  map[string]*warning
	notes     []string
	entries   []entry
	lastWrite time.Time
	dirty     bool

	nudge chan struct{}
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	// The writer's hand-off.
	wmu       sync.Mutex
	pending   [][]byte
	pendBytes int64
	wnudge    chan struct{}
	wdone     chan struct{}
	abandon   atomic.Bool
	unwritten atomic.Int64
}

// entry is a log entry Log records, written as it is.
type entry struct {
	level  zapcore.Level
	msg    string
	fields []zap.Field
}

// maxEntries bounds the entries Log keeps between two reports.
const maxEntries = 16

type warning struct {
	count int64
	last  string
}

// New starts a Reporter.
func New(cfg Config) *Reporter {
	r := &Reporter{
		cfg:      cfg,
		drops:    make([]int64, len(cfg.Reasons)),
		causes:   make([]error, len(cfg.Reasons)),
		warnings: make(map[string]*warning),
		nudge:    make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		wnudge:   make(chan struct{}, 1),
		wdone:    make(chan struct{}),
	}
	go r.run()
	if cfg.Writer != nil {
		go r.runWriter()
	} else {
		close(r.wdone)
	}
	return r
}

// Dropped records n spans dropped for the reason of index reason, with the
// last cause.
func (r *Reporter) Dropped(reason int, n int64, cause error) {
	if n <= 0 {
		return
	}
	r.mu.Lock()
	r.drops[reason] += n
	if cause != nil {
		r.causes[reason] = cause
	}
	r.markLocked()
	r.mu.Unlock()
}

// Warn records a failure that lost nothing (yet): a retry, a repaired
// string, a message from the backend. Warnings of one kind are aggregated.
func (r *Reporter) Warn(kind, msg string) {
	r.mu.Lock()
	w := r.warnings[kind]
	if w == nil {
		w = &warning{}
		r.warnings[kind] = w
	}
	w.count++
	w.last = msg
	r.markLocked()
	r.mu.Unlock()
}

// Note records a message written once, at info level, with the next
// report (for example: delivery resumed).
func (r *Reporter) Note(msg string) {
	r.mu.Lock()
	if len(r.notes) < 16 {
		r.notes = append(r.notes, msg)
	}
	r.markLocked()
	r.mu.Unlock()
}

// Log records an entry written as it is, before anything else, with the
// next report: what a constructor has to say, which its caller must not
// wait for. Entries past 16 between two reports are not written.
func (r *Reporter) Log(level zapcore.Level, msg string, fields ...zap.Field) {
	r.mu.Lock()
	if len(r.entries) < maxEntries {
		r.entries = append(r.entries, entry{level, msg, fields})
	}
	r.markLocked()
	r.mu.Unlock()
}

// WriteDropped hands copies of the parts of one dropped request to the
// writer; when the hand-off is full, the request is not written and
// counted in Unwritten. It returns at once.
func (r *Reporter) WriteDropped(parts ...[]byte) {
	if r.cfg.Writer == nil || len(parts) == 0 {
		return
	}
	var size int64
	for _, p := range parts {
		size += int64(len(p))
	}
	r.wmu.Lock()
	if r.abandon.Load() || r.pendBytes+size > r.cfg.WriterBudget {
		r.wmu.Unlock()
		r.unwritten.Add(1)
		return
	}
	body := make([]byte, 0, size)
	for _, p := range parts {
		body = append(body, p...)
	}
	r.pending = append(r.pending, body)
	r.pendBytes += size
	r.wmu.Unlock()
	select {
	case r.wnudge <- struct{}{}:
	default:
	}
}

// Writes reports whether dropped requests are written anywhere.
func (r *Reporter) Writes() bool { return r.cfg.Writer != nil }

// Unwritten counts the dropped requests the writer did not receive: the
// hand-off was full, the writer failed, or Close's deadline passed first.
func (r *Reporter) Unwritten() int64 { return r.unwritten.Load() }

// markLocked notes pending events and wakes the loop when the last report
// is older than the interval.
func (r *Reporter) markLocked() {
	first := !r.dirty
	r.dirty = true
	if first && r.cfg.Clock.Since(r.lastWrite) >= r.cfg.Interval {
		select {
		case r.nudge <- struct{}{}:
		default:
		}
	}
}

func (r *Reporter) run() {
	defer close(r.done)
	t := r.cfg.Clock.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-r.nudge:
		case <-t.Chan():
		case <-r.stop:
			r.flush()
			_ = r.cfg.Log.Sync()
			return
		}
		r.flush()
	}
}

// flush writes what is pending, if anything: notes and warnings first, the
// drops last, so that the last line of an ending exporter says what it
// lost.
func (r *Reporter) flush() {
	r.mu.Lock()
	if !r.dirty {
		r.mu.Unlock()
		return
	}
	drops, causes := r.drops, r.causes
	r.drops, r.causes = make([]int64, len(drops)), make([]error, len(causes))
	warnings, notes, entries := r.warnings, r.notes, r.entries
	r.warnings, r.notes, r.entries = make(map[string]*warning), nil, nil
	r.dirty = false
	r.lastWrite = r.cfg.Clock.Now()
	r.mu.Unlock()

	for _, e := range entries {
		r.cfg.Log.Log(e.level, e.msg, e.fields...)
	}
	prefix := r.cfg.Component + ": "
	for _, n := range notes {
		r.cfg.Log.Info(prefix + n)
	}
	for kind, w := range warnings {
		r.cfg.Log.Warn(prefix+kind, zap.Int64("count", w.count), zap.String("last", w.last))
	}
	var total int64
	for _, n := range drops {
		total += n
	}
	if total == 0 {
		return
	}
	fields := make([]zap.Field, 0, 2*len(drops)+1)
	fields = append(fields, zap.Int64("dropped", total))
	for i, n := range drops {
		if n == 0 {
			continue
		}
		name := r.cfg.Reasons[i]
		fields = append(fields, zap.Int64(name, n))
		if causes[i] != nil {
			fields = append(fields, zap.String(name+"_cause", causes[i].Error()))
		}
	}
	r.cfg.Log.Error(prefix+"spans dropped", fields...)
}

// runWriter takes the pending requests one at a time, so that those it
// has not taken when Close's deadline passes are still pending, and Close
// counts them at once.
func (r *Reporter) runWriter() {
	defer close(r.wdone)
	var line []byte
	for {
		for {
			r.wmu.Lock()
			if len(r.pending) == 0 || r.abandon.Load() {
				r.wmu.Unlock()
				break
			}
			body := r.pending[0]
			r.pending[0] = nil
			r.pending = r.pending[1:]
			r.wmu.Unlock()
			var err error
			line, err = r.cfg.Convert(line[:0], body)
			if err == nil {
				line = append(line, '\n')
				_, err = r.cfg.Writer.Write(line)
			}
			if err != nil {
				r.unwritten.Add(1)
				r.Warn("dropped-spans writer failed", err.Error())
			}
			r.wmu.Lock()
			r.pendBytes -= int64(len(body))
			r.wmu.Unlock()
		}
		select {
		case <-r.wnudge:
		case <-r.stop:
			r.wmu.Lock()
			empty := len(r.pending) == 0
			r.wmu.Unlock()
			if empty {
				return
			}
		}
	}
}

// Close writes what is pending and stops, waiting for the logger and the
// writer until ctx is done. After ctx is done the requests not yet written
// are abandoned (and counted in Unwritten); a logger or writer still
// busy finishes in the background, and nothing more is written.
func (r *Reporter) Close(ctx context.Context) error {
	r.once.Do(func() { close(r.stop) })
	for _, ch := range []chan struct{}{r.wdone, r.done} {
		select {
		case <-ch:
		case <-ctx.Done():
			r.abandonPending()
			return ctx.Err()
		}
	}
	return nil
}

// abandonPending stops the writer from taking more and counts what it had
// not taken in Unwritten; a request it is writing may still be written.
func (r *Reporter) abandonPending() {
	r.wmu.Lock()
	r.abandon.Store(true)
	n := len(r.pending)
	for _, b := range r.pending {
		r.pendBytes -= int64(len(b))
	}
	r.pending = nil
	r.wmu.Unlock()
	r.unwritten.Add(int64(n))
}
