package scenario

import (
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/tracekeeper/tracekeeper/exporter"
)

// watcher samples our exporter's Stats while the load runs: its
// concurrency limit, round-trip time and the memory it holds.
type watcher struct {
	clock clockwork.Clock
	exp   *exporter.Exporter
	start time.Time
	half  time.Duration
	stop  chan struct{}
	done  chan struct{}

	// Written by the sampling goroutine until done is closed.
	w                 Watch
	steadySum, steady int64
}

func startWatch(clock clockwork.Clock, exp *exporter.Exporter, load time.Duration) *watcher {
	w := &watcher{
		clock: clock, exp: exp, start: clock.Now(), half: load / 2,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	w.w.Budget = exp.Stats().MemoryBudget
	go w.run()
	return w
}

func (w *watcher) run() {
	defer close(w.done)
	t := w.clock.NewTicker(watchInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.Chan():
			w.sample()
		}
	}
}

func (w *watcher) sample() {
	st := w.exp.Stats()
	w.w.Samples++
	w.w.PeakLimit = max(w.w.PeakLimit, st.ConcurrencyLimit)
	w.w.EndLimit = st.ConcurrencyLimit
	w.w.RoundTrip = st.RoundTrip
	w.w.PeakHeld = max(w.w.PeakHeld, st.QueueBytes+st.InFlightBytes)
	w.w.PeakSpoolBytes = max(w.w.PeakSpoolBytes, st.SpoolBytes)
	w.w.PeakSpooled = max(w.w.PeakSpooled, st.Spooled)
	if w.clock.Since(w.start) >= w.half {
		w.steadySum += st.ConcurrencyLimit
		w.steady++
	}
}

// finish takes a last sample, stops the watcher and returns what it saw.
func (w *watcher) finish() Watch {
	close(w.stop)
	<-w.done
	w.sample()
	if w.steady > 0 {
		w.w.SteadyLimit = float64(w.steadySum) / float64(w.steady)
	}
	return w.w
}
