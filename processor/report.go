package processor

import (
	"context"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// reporter logs, from its own goroutine, what the Guard replaced: at most
// one line per interval, and none when nothing was replaced since the
// last. It never runs on the path of a span: it reads the Guard's counters
// through Stats.
type reporter struct {
	g     *Guard
	log   *zap.Logger
	every time.Duration
	clock clockwork.Clock

	stopc chan struct{} // closed by stop
	done  chan struct{} // closed when run returns

	last uint64 // replacements counted at the last line; owned by run
}

func newReporter(g *Guard, log *zap.Logger, every time.Duration, clock clockwork.Clock) *reporter {
	return &reporter{g: g, log: log, every: every, clock: clock,
		stopc: make(chan struct{}), done: make(chan struct{})}
}

// run reports once per interval until stop, then once more.
func (r *reporter) run() {
	defer close(r.done)
	for {
		t := r.clock.NewTimer(r.every)
		select {
		case <-r.stopc:
			t.Stop()
			r.report()
			return
		case <-t.Chan():
			r.report()
		}
	}
}

// stop asks run to end; it is called once, by Shutdown.
func (r *reporter) stop() { close(r.stopc) }

// wait returns when run has ended, or with ctx's error when ctx ends
// first.
func (r *reporter) wait(ctx context.Context) error {
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *reporter) report() {
	st := r.g.Stats()
	total := st.ReplacedOverLimit + st.ReplacedUntracked
	if total == r.last {
		return
	}
	msg := "tracekeeper: cardinality guard replaced values with " + OverflowValue
	if r.g.report {
		msg = "tracekeeper: cardinality guard would replace values with " + OverflowValue + " (report-only)"
	}
	r.log.Warn(msg,
		zap.Uint64("replaced", total-r.last),
		zap.Uint64("replaced_total", total),
		zap.Uint64("marked_spans_total", st.MarkedSpans),
		zap.Int("keys", st.Keys),
		zap.Int("scopes", st.Scopes),
		zap.Int("values", st.Values),
		zap.Array("top_offenders", offenders(st.TopOffenders)),
	)
	r.last = total
}

// offenders logs a list of Offenders.
type offenders []Offender

func (o offenders) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for i := range o {
		off := &o[i]
		err := enc.AppendObject(zapcore.ObjectMarshalerFunc(func(enc zapcore.ObjectEncoder) error {
			enc.AddString("target", off.Target)
			enc.AddString("key", off.Key)
			enc.AddString("reason", off.Reason)
			enc.AddUint64("replaced", off.Replaced)
			return nil
		}))
		if err != nil {
			return err
		}
	}
	return nil
}
