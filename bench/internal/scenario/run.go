package scenario

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/tracekeeper/tracekeeper/exporter"
)

// Scenario is one backend condition under which the pipelines are
// compared.
type Scenario struct {
	// Name identifies the scenario on the command line and in tables.
	Name string
	// Latency is added to every answer of the receiver.
	Latency time.Duration
	// MaxConcurrent, when positive, makes the receiver an overloaded
	// backend: it serves that many requests at once and answers 503 to
	// the others (see ReceiverConfig.MaxConcurrent). The scenario then
	// also runs OursFixed with as many workers.
	MaxConcurrent int
	// Outage, when not Available, is the mode the receiver is in from
	// OutageStart for OutageFor, after which it recovers.
	Outage      Mode
	OutageStart time.Duration
	OutageFor   time.Duration
	// Duration is how long the load is offered.
	Duration time.Duration
	// Rate, when positive, is the offered load in spans per second of
	// this scenario, in place of RunConfig.Rate.
	Rate int
	// Spool makes the scenario also run OursSpool: ours with a disk
	// spool.
	Spool bool
}

// Label describes the backend condition in a few words.
func (s Scenario) Label() string {
	switch {
	case s.Outage != Available:
		return fmt.Sprintf("%s for %s", s.Outage, s.OutageFor)
	case s.MaxConcurrent > 0:
		return fmt.Sprintf("%d at once, %s latency, 503 beyond", s.MaxConcurrent, s.Latency)
	}
	return fmt.Sprintf("%s latency", s.Latency)
}

// Pipelines returns the pipelines the scenario runs out of those chosen:
// kinds, followed in an overload scenario by OursFixed when Ours is
// among them, so that the adaptive concurrency and a fixed pool as large
// as the backend's capacity run side by side, and in a spool scenario by
// OursSpool, so that ours with and without a disk spool do.
func (s Scenario) Pipelines(kinds []Kind) []Kind {
	out := append([]Kind(nil), kinds...)
	if s.MaxConcurrent > 0 && slices.Contains(kinds, Ours) && !slices.Contains(kinds, OursFixed) {
		out = append(out, OursFixed)
	}
	if s.Spool && slices.Contains(kinds, Ours) && !slices.Contains(kinds, OursSpool) {
		out = append(out, OursSpool)
	}
	return out
}

// Overload is the capacity and latency of the standard overload scenario's
// backend.
const (
	OverloadConcurrent = 4
	OverloadLatency    = 100 * time.Millisecond
)

// Standard returns the scenarios of the comparison: backend latencies of 0,
// 20, 100, 500 and 1000 ms for duration each; then an outage of outage
// answering 503, and one refusing connections, each in a run of twice
// duration that starts the outage after a fifth of duration, so that the
// pipelines have time to recover, and each also run by ours with a disk
// spool; then an overloaded backend serving
// OverloadConcurrent requests at once, each after OverloadLatency, and
// answering 503 beyond, for duration.
func Standard(duration, outage time.Duration) []Scenario {
	out := []Scenario{
		{Name: "latency-0ms", Duration: duration},
		{Name: "latency-20ms", Latency: 20 * time.Millisecond, Duration: duration},
		{Name: "latency-100ms", Latency: 100 * time.Millisecond, Duration: duration},
		{Name: "latency-500ms", Latency: 500 * time.Millisecond, Duration: duration},
		{Name: "latency-1s", Latency: time.Second, Duration: duration},
	}
	for _, o := range []struct {
		name string
		mode Mode
	}{{"outage-503", Unavailable}, {"outage-refused", Refusing}} {
		out = append(out, Scenario{
			Name:        o.name,
			Outage:      o.mode,
			OutageStart: duration / 5,
			OutageFor:   outage,
			Duration:    2 * duration,
			Spool:       true,
		})
	}
	return append(out, Scenario{
		Name:          fmt.Sprintf("overload-%d", OverloadConcurrent),
		Latency:       OverloadLatency,
		MaxConcurrent: OverloadConcurrent,
		Duration:      duration,
	})
}

// LongOutageRate is the offered load of the LongOutage scenario.
const LongOutageRate = 50_000

// LongOutage returns the scenario of a long outage: at LongOutageRate
// spans per second, the backend answers 503 for outage, from one second
// into the load; the load goes on for half as long again after it, so
// that what piled up can be sent. Ours also runs it with a disk spool.
func LongOutage(outage time.Duration) Scenario {
	return Scenario{
		Name:        "outage-" + outage.String(),
		Outage:      Unavailable,
		OutageStart: time.Second,
		OutageFor:   outage,
		Duration:    time.Second + outage + outage/2,
		Rate:        LongOutageRate,
		Spool:       true,
	}
}

// Defaults of RunConfig.
const (
	DefaultRate            = 200_000
	DefaultShutdownTimeout = 2 * time.Second
	DefaultSettleTimeout   = 30 * time.Second
	probeInterval          = 5 * time.Millisecond
	watchInterval          = 20 * time.Millisecond
)

// RunConfig configures Run.
type RunConfig struct {
	// Rate is the offered load in spans per second; the default is
	// DefaultRate.
	Rate int
	// Goroutines end the spans; the default is DefaultGoroutines.
	Goroutines int
	// ShutdownTimeout bounds TracerProvider.Shutdown after the load; what
	// has not arrived by then is not delivered. The default is
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// SettleTimeout bounds the wait, after a shutdown that ran out of
	// time, for the pipeline's goroutines to finish, so that they do not
	// run into the next scenario. The default is DefaultSettleTimeout.
	SettleTimeout time.Duration
	// Decode makes the receiver decode every request fully (see
	// ReceiverConfig.Decode).
	Decode bool
	// BSPQueue is the BatchSpanProcessor's queue size for both pipelines;
	// zero keeps the SDK's default (2048).
	BSPQueue int
	// Gzip compresses request bodies in every pipeline.
	Gzip bool
	// H2C sends HTTP/2 without TLS in every pipeline (see
	// PipelineConfig.H2C).
	H2C bool
	// MemoryBudget, when positive, is our exporter's memory budget
	// (exporter.WithMemoryBudget); zero keeps its default.
	MemoryBudget int
	// SpoolMaxBytes is the disk budget of OursSpool's spool; zero keeps
	// the exporter's default.
	SpoolMaxBytes int64
	// Progress, when not nil, is called about once per ProgressEvery
	// (default one second) while the load runs.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Clock paces the load, the outage and the progress reports; nil means
	// the real clock.
	Clock clockwork.Clock
}

// Progress reports a run under way.
type Progress struct {
	Scenario  Scenario
	Pipeline  Kind
	Elapsed   time.Duration
	Ended     int64
	Delivered int64
	Mode      Mode
}

// Result is the outcome of one run of one pipeline in one scenario.
type Result struct {
	Scenario Scenario
	Pipeline Kind
	Rate     int

	// Offered spans were asked for by the schedule, Ended were ended,
	// Handed reached the exporter (the rest were dropped by the
	// BatchSpanProcessor's queue), Delivered were answered with success by
	// the receiver before the shutdown deadline.
	Offered, Ended, Handed, Delivered int64

	// Load is how long the load ran; Shutdown how long the provider's
	// shutdown took, and ShutdownErr what it returned. Unsettled is set
	// when the pipeline's goroutines were still running SettleTimeout
	// after the shutdown deadline.
	Load        time.Duration
	Shutdown    time.Duration
	ShutdownErr string
	Unsettled   bool

	// End holds the span.End() durations.
	End Histogram
	// Usage is the process's CPU time from the start of the load to the
	// end of the shutdown, and its peak heap meanwhile.
	Usage Usage

	Receiver ReceiverStats
	// Steady is what the receiver saw in the second half of the load
	// alone, once the pipeline has had time to settle: the difference of
	// its stats at the end of the load and half-way through.
	Steady ReceiverStats
	// Exporter is our exporter's accounting after the shutdown; nil for
	// the stock pipeline.
	Exporter *exporter.Stats
	// Watch is what our exporter's Stats showed while the load ran; zero
	// for the stock pipeline.
	Watch Watch
	// Reports counts the errors and warnings the pipeline reported.
	Reports int64
}

// Watch is what our exporter's Stats showed, sampled every watchInterval
// while the load ran.
type Watch struct {
	// Samples is the number of samples taken.
	Samples int
	// PeakLimit and EndLimit are the largest concurrency limit seen and
	// the last one before the load ended; SteadyLimit is the mean over
	// the second half of the load. For a fixed pool (WithWorkers) they
	// are the pool's size.
	PeakLimit, EndLimit int64
	SteadyLimit         float64
	// RoundTrip is the round-trip time the limit adapted to when the load
	// ended.
	RoundTrip time.Duration
	// PeakHeld is the largest memory the exporter held, queued and in
	// flight (Stats.QueueBytes + Stats.InFlightBytes); Budget is its
	// memory budget.
	PeakHeld, Budget int64
	// PeakSpoolBytes is the most disk the spool used (Stats.SpoolBytes)
	// and PeakSpooled the most spans it held (Stats.Spooled); zero
	// without a spool.
	PeakSpoolBytes, PeakSpooled int64
}

// RefusedPct is the share of the requests a receiver answered that it
// refused for being over its concurrency (ReceiverStats.Refused), in
// percent.
func RefusedPct(s ReceiverStats) float64 {
	all := s.Requests + s.Failed
	if all == 0 {
		return 0
	}
	return 100 * float64(s.Refused) / float64(all)
}

// DeliveredPct is the percentage of the ended spans that were delivered.
func (r *Result) DeliveredPct() float64 {
	if r.Ended == 0 {
		return 0
	}
	return 100 * float64(r.Delivered) / float64(r.Ended)
}

// Lost is the number of ended spans that were not delivered.
func (r *Result) Lost() int64 { return r.Ended - r.Delivered }

// CPUPerDelivered is the process's CPU time per delivered span; zero when
// nothing was delivered.
func (r *Result) CPUPerDelivered() time.Duration {
	if r.Delivered == 0 {
		return 0
	}
	return r.Usage.CPU / time.Duration(r.Delivered)
}

// Run runs one scenario through one pipeline: it starts a receiver and the
// pipeline, offers the load, applies the outage if any, then shuts the
// pipeline down within cfg.ShutdownTimeout and reports what arrived.
func Run(ctx context.Context, sc Scenario, kind Kind, cfg RunConfig) (*Result, error) {
	cfg = cfg.withDefaults()
	if sc.Rate > 0 {
		cfg.Rate = sc.Rate
	}
	recv, err := NewReceiver(ReceiverConfig{
		Latency: sc.Latency, MaxConcurrent: sc.MaxConcurrent, Decode: cfg.Decode, Clock: cfg.Clock, H2C: cfg.H2C,
	})
	if err != nil {
		return nil, err
	}
	defer recv.Close()
	pcfg := PipelineConfig{
		BSPQueue: cfg.BSPQueue, Gzip: cfg.Gzip, MemoryBudget: cfg.MemoryBudget, Workers: sc.MaxConcurrent,
		SpoolMaxBytes: cfg.SpoolMaxBytes, H2C: cfg.H2C,
	}
	if kind == OursSpool {
		dir, err := os.MkdirTemp("", "tracekeeper-spool-")
		if err != nil {
			return nil, fmt.Errorf("scenario: spool directory: %w", err)
		}
		defer os.RemoveAll(dir)
		pcfg.SpoolDir = dir
	}
	p, err := NewPipeline(ctx, kind, recv.Addr(), pcfg)
	if err != nil {
		return nil, err
	}
	res := &Result{Scenario: sc, Pipeline: kind, Rate: cfg.Rate}
	reports0 := Reports()

	// Two collections: the first moves what sync.Pools hold to their
	// victim caches, the second frees it, so that the previous run's
	// pooled buffers do not count in this one's heap.
	runtime.GC()
	runtime.GC()
	pr := startProbe(cfg.Clock, probeInterval)

	var outageErr error
	var outageMu sync.Mutex
	setMode := func(m Mode) {
		if err := recv.SetMode(m); err != nil {
			outageMu.Lock()
			outageErr = errors.Join(outageErr, err)
			outageMu.Unlock()
		}
	}
	var timers []clockwork.Timer
	if sc.Outage != Available && sc.OutageFor > 0 {
		timers = append(timers,
			cfg.Clock.AfterFunc(sc.OutageStart, func() { setMode(sc.Outage) }),
			cfg.Clock.AfterFunc(sc.OutageStart+sc.OutageFor, func() { setMode(Available) }))
	}

	var ended atomic.Int64
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if cfg.Progress == nil {
			return
		}
		start := cfg.Clock.Now()
		t := cfg.Clock.NewTicker(cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.Chan():
				cfg.Progress(Progress{
					Scenario: sc, Pipeline: kind, Elapsed: cfg.Clock.Since(start),
					Ended: ended.Load(), Delivered: recv.Stats().Spans, Mode: recv.Mode(),
				})
			}
		}
	}()

	var (
		halfMu   sync.Mutex
		halfWay  ReceiverStats
		halfDone bool
	)
	timers = append(timers, cfg.Clock.AfterFunc(sc.Duration/2, func() {
		st := recv.Stats()
		halfMu.Lock()
		halfWay, halfDone = st, true
		halfMu.Unlock()
	}))

	var watch *watcher
	if p.Exporter != nil {
		watch = startWatch(cfg.Clock, p.Exporter, sc.Duration)
	}

	load := Generate(ctx, p.Provider.Tracer(TracerName), LoadConfig{
		Rate: cfg.Rate, Duration: sc.Duration, Goroutines: cfg.Goroutines,
		Clock: cfg.Clock, Ended: &ended,
	})
	close(stopProgress)
	<-progressDone
	if watch != nil {
		res.Watch = watch.finish()
	}
	endLoad := recv.Stats()
	for _, t := range timers {
		t.Stop()
	}
	// Whatever happened, the outage is over by the time the load ends.
	setMode(Available)

	sctx, cancel := context.WithTimeout(ctx, cfg.ShutdownTimeout)
	t0 := cfg.Clock.Now()
	serr := p.Shutdown(sctx)
	res.Shutdown = cfg.Clock.Since(t0)
	cancel()
	res.Receiver = recv.Stats()
	res.Usage = pr.finish()
	halfMu.Lock()
	if halfDone {
		res.Steady = endLoad.sub(halfWay)
	}
	halfMu.Unlock()
	if serr != nil {
		res.ShutdownErr = serr.Error()
	}
	select {
	case <-p.Stopped():
	case <-cfg.Clock.After(cfg.SettleTimeout):
		res.Unsettled = true
	}

	res.Offered, res.Ended, res.Load, res.End = load.Offered, load.Ended, load.Elapsed, load.End
	res.Handed = p.Handed()
	res.Delivered = res.Receiver.Spans
	if p.Exporter != nil {
		st := p.Exporter.Stats()
		res.Exporter = &st
	}
	res.Reports = Reports() - reports0
	outageMu.Lock()
	defer outageMu.Unlock()
	return res, outageErr
}

func (c RunConfig) withDefaults() RunConfig {
	if c.Rate <= 0 {
		c.Rate = DefaultRate
	}
	if c.Goroutines <= 0 {
		c.Goroutines = DefaultGoroutines
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.SettleTimeout <= 0 {
		c.SettleTimeout = DefaultSettleTimeout
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = time.Second
	}
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	return c
}
