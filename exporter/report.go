package exporter

import (
	"io"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/tracekeeper/tracekeeper/internal/otlpenc"
)

// reporter tells the fallback logger about drops and failures without
// flooding it: events are aggregated and written at most once per interval,
// the first one after a quiet interval at once. It also writes dropped
// requests to the dropped-spans writer, when one is set.
type reporter struct {
	log      *zap.Logger
	clock    clockwork.Clock
	interval time.Duration

	mu        sync.Mutex
	drops     Drops
	dropErr   [len(reasons)]error // last cause per reason
	warnings  map[string]*warning
	lastWrite time.Time
	dirty     bool

	writeMu sync.Mutex
	writer  io.Writer
	jsonBuf []byte

	nudge chan struct{}
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

type warning struct {
	count int64
	last  string
}

func newReporter(log *zap.Logger, clk clockwork.Clock, interval time.Duration, w io.Writer) *reporter {
	if interval <= 0 {
		interval = defaultLogInterval
	}
	r := &reporter{
		log:      log,
		clock:    clk,
		interval: interval,
		warnings: make(map[string]*warning),
		writer:   w,
		nudge:    make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go r.run()
	return r
}

// dropped records n spans dropped for reason. parts, when given, are the
// encoded requests they were in, written out for replay.
func (r *reporter) dropped(reason Reason, n int64, cause error, parts ...[]byte) {
	r.mu.Lock()
	*r.drops.field(reason) += n
	if cause != nil {
		r.dropErr[reasonIndex(reason)] = cause
	}
	r.markLocked()
	r.mu.Unlock()
	if r.writer != nil {
		for _, p := range parts {
			r.writeDropped(p)
		}
	}
}

// warn records a failure that lost nothing (yet): a retry, a repaired
// string, a message from the backend.
func (r *reporter) warn(kind, msg string) {
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

// markLocked notes pending events and wakes the loop when the last report
// is older than the interval.
func (r *reporter) markLocked() {
	first := !r.dirty
	r.dirty = true
	if first && r.clock.Since(r.lastWrite) >= r.interval {
		select {
		case r.nudge <- struct{}{}:
		default:
		}
	}
}

func (r *reporter) run() {
	defer close(r.done)
	t := r.clock.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-r.nudge:
		case <-t.Chan():
		case <-r.stop:
			r.flush()
			return
		}
		r.flush()
	}
}

// flush writes what is pending, if anything.
func (r *reporter) flush() {
	r.mu.Lock()
	if !r.dirty {
		r.mu.Unlock()
		return
	}
	drops, causes := r.drops, r.dropErr
	r.drops, r.dropErr = Drops{}, [len(reasons)]error{}
	warnings := r.warnings
	r.warnings = make(map[string]*warning)
	r.dirty = false
	r.lastWrite = r.clock.Now()
	r.mu.Unlock()

	if total := drops.Total(); total > 0 {
		fields := make([]zap.Field, 0, 2*len(reasons)+1)
		fields = append(fields, zap.Int64("dropped", total))
		for i, reason := range reasons {
			if n := drops.Get(reason); n > 0 {
				fields = append(fields, zap.Int64(string(reason), n))
				if causes[i] != nil {
					fields = append(fields, zap.String(string(reason)+"_cause", causes[i].Error()))
				}
			}
		}
		r.log.Error("tracekeeper exporter: spans dropped", fields...)
	}
	for kind, w := range warnings {
		r.log.Warn("tracekeeper exporter: "+kind,
			zap.Int64("count", w.count), zap.String("last", w.last))
	}
}

// writeDropped writes body as one line of OTLP/JSON.
func (r *reporter) writeDropped(body []byte) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	var err error
	r.jsonBuf, err = otlpenc.AppendJSON(r.jsonBuf[:0], body)
	if err == nil {
		r.jsonBuf = append(r.jsonBuf, '\n')
		_, err = r.writer.Write(r.jsonBuf)
	}
	if err != nil {
		r.warn("dropped-spans writer failed", err.Error())
	}
}

// close writes what is pending and stops the loop.
func (r *reporter) close() {
	r.once.Do(func() { close(r.stop) })
	<-r.done
	_ = r.log.Sync()
}

func reasonIndex(r Reason) int {
	for i, x := range reasons {
		if x == r {
			return i
		}
	}
	return 0
}
