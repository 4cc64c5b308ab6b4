package scenario

import (
	"runtime/metrics"
	"time"

	"github.com/jonboulle/clockwork"
)

// Heap metrics sampled by a probe.
const (
	metricLive    = "/gc/heap/live:bytes"                // live heap after the last GC
	metricObjects = "/memory/classes/heap/objects:bytes" // live and not yet swept objects
)

// probe measures the process while a scenario runs: CPU time used and the
// peak of the heap, sampled at a fixed interval.
type probe struct {
	clock   clockwork.Clock
	cpu0    time.Duration
	stop    chan struct{}
	done    chan struct{}
	samples []metrics.Sample
	peak    Usage
}

// Usage is what a probe measured.
type Usage struct {
	// CPU is the process's CPU time, user and system.
	CPU time.Duration
	// PeakLiveHeap is the largest live heap seen at the end of a garbage
	// collection cycle: the memory the program holds on to.
	PeakLiveHeap uint64
	// PeakHeap is the largest heap seen, garbage not yet collected
	// included.
	PeakHeap uint64
	// StartLiveHeap is the live heap when the probe started, right after
	// a garbage collection: what the process held before the run.
	StartLiveHeap uint64
}

func startProbe(clock clockwork.Clock, every time.Duration) *probe {
	p := &probe{
		clock: clock,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		samples: []metrics.Sample{
			{Name: metricLive},
			{Name: metricObjects},
		},
	}
	p.cpu0 = processCPU()
	p.sample()
	p.peak.StartLiveHeap = p.peak.PeakLiveHeap
	go p.run(every)
	return p
}

func (p *probe) run(every time.Duration) {
	defer close(p.done)
	t := p.clock.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.Chan():
			p.sample()
		}
	}
}

func (p *probe) sample() {
	metrics.Read(p.samples)
	if v := p.samples[0].Value; v.Kind() == metrics.KindUint64 {
		p.peak.PeakLiveHeap = max(p.peak.PeakLiveHeap, v.Uint64())
	}
	if v := p.samples[1].Value; v.Kind() == metrics.KindUint64 {
		p.peak.PeakHeap = max(p.peak.PeakHeap, v.Uint64())
	}
}

// finish stops the probe and returns what it measured.
func (p *probe) finish() Usage {
	close(p.stop)
	<-p.done
	p.sample()
	p.peak.CPU = processCPU() - p.cpu0
	return p.peak
}
