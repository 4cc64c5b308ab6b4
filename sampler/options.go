package sampler

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"
)

// Defaults. Each option's documentation names the one it overrides.
const (
	DefaultRatio            = 0.05
	DefaultDecisionDelay    = 500 * time.Millisecond
	DefaultMaxWait          = 30 * time.Second
	DefaultMaxTraces        = 10_000
	DefaultMaxSpansPerTrace = 1_000
	DefaultMaxBytes         = 64 << 20
	DefaultDecisionCache    = 50_000
	DefaultMaxKeptPerSecond = 100
	// DefaultKeptBurstSeconds is the default burst of the cap on kept
	// traces, in seconds' worth of it: 500 traces at the default cap.
	DefaultKeptBurstSeconds = 5
)

// Standard environment variables read for the head ratio.
const (
	envSampler    = "OTEL_TRACES_SAMPLER"
	envSamplerArg = "OTEL_TRACES_SAMPLER_ARG"
)

// Option configures an ErrorKeeper. The set of options is closed: only this
// package can implement Option.
type Option interface {
	apply(config) config
}

type optionFunc func(config) config

func (f optionFunc) apply(c config) config { return f(c) }

// config is the resolved configuration: defaults, then the environment, then
// options.
type config struct {
	ratio            float64
	head             sdktrace.Sampler
	decisionDelay    time.Duration
	maxWait          time.Duration
	latency          time.Duration
	predicate        func(sdktrace.ReadOnlySpan) bool
	maxTraces        int
	maxSpansPerTrace int
	maxBytes         int64
	decisionCache    int
	maxKeptPerSecond float64
	keptBurst        int // 0: DefaultKeptBurstSeconds of maxKeptPerSecond
	meterProvider    metric.MeterProvider
	logger           *zap.Logger
	dryRun           bool

	clock clockwork.Clock
	tick  time.Duration // sweep period of the background goroutine
}

func newConfig(opts []Option) config {
	c := config{
		ratio:            DefaultRatio,
		decisionDelay:    DefaultDecisionDelay,
		maxWait:          DefaultMaxWait,
		maxTraces:        DefaultMaxTraces,
		maxSpansPerTrace: DefaultMaxSpansPerTrace,
		maxBytes:         DefaultMaxBytes,
		decisionCache:    DefaultDecisionCache,
		maxKeptPerSecond: DefaultMaxKeptPerSecond,
	}
	c = c.fromEnv(os.Getenv)
	for _, o := range opts {
		if o != nil {
			c = o.apply(c)
		}
	}
	if c.clock == nil {
		c.clock = clockwork.NewRealClock()
	}
	if c.meterProvider == nil {
		c.meterProvider = otel.GetMeterProvider()
	}
	if c.tick <= 0 {
		c.tick = defaultTick(c.decisionDelay)
	}
	return c
}

// defaultTick is how often held traces are checked against their deadlines:
// a fifth of the decision delay, between 1 ms and 100 ms.
func defaultTick(delay time.Duration) time.Duration {
	return min(max(delay/5, time.Millisecond), 100*time.Millisecond)
}

// fromEnv applies OTEL_TRACES_SAMPLER_ARG as the head ratio when
// OTEL_TRACES_SAMPLER names a trace-ID ratio sampler. A malformed value is
// reported to the OpenTelemetry error handler with its name and ignored.
func (c config) fromEnv(getenv func(string) string) config {
	switch strings.ToLower(strings.TrimSpace(getenv(envSampler))) {
	case "traceidratio", "parentbased_traceidratio":
	default:
		return c
	}
	arg := strings.TrimSpace(getenv(envSamplerArg))
	if arg == "" {
		return c
	}
	r, err := strconv.ParseFloat(arg, 64)
	if err == nil && (r < 0 || r > 1 || math.IsNaN(r)) {
		err = fmt.Errorf("ratio %v is outside [0, 1]", r)
	}
	if err != nil {
		otel.Handle(fmt.Errorf("sampler: ignoring %s=%q: %w", envSamplerArg, arg, err))
		return c
	}
	c.ratio = r
	return c
}

// WithRatio sets the head sampling ratio: the share of new local traces
// sampled up front, as by sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)).
// A ratio of 1 or more samples every trace at the head; 0 or less samples
// none, so only the traces kept by the tail are exported. NaN is ignored.
// Ignored when WithHead sets a head.
//
// Default: DefaultRatio (0.05). Environment: OTEL_TRACES_SAMPLER_ARG, read
// when OTEL_TRACES_SAMPLER is traceidratio or parentbased_traceidratio. This
// option wins over the environment.
func WithRatio(r float64) Option {
	return optionFunc(func(c config) config {
		if !math.IsNaN(r) {
			c.ratio = r
		}
		return c
	})
}

// WithHead sets the head sampler, asked for every new local trace and
// every span with a remote parent: for example a
// go.opentelemetry.io/contrib/samplers/jaegerremote sampler, a probability
// sampler that writes the ot=th tracestate threshold, or a rule sampler of
// your own. What the head samples is exported at once as the head
// returned it, tracestate and attributes included; where it drops,
// ErrorKeeper records the span only, and the tail decides. Spans with a
// local parent follow the parent without asking the head. The head is
// called concurrently, as a provider's sampler is. Wrap it in
// sdktrace.ParentBased for it to follow remote parents' sampled flags.
// Nil restores the default.
//
// Default: sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), with
// the ratio of WithRatio. This option wins over WithRatio and the
// environment.
func WithHead(s sdktrace.Sampler) Option {
	return optionFunc(func(c config) config {
		c.head = s
		return c
	})
}

// WithDecisionDelay sets how long a trace is held after its local root span
// ends, so that spans still running in other goroutines can join it before
// the trace is decided. Values ≤ 0 are ignored.
//
// Default: DefaultDecisionDelay (500 ms).
func WithDecisionDelay(d time.Duration) Option {
	return optionFunc(func(c config) config {
		if d > 0 {
			c.decisionDelay = d
		}
		return c
	})
}

// WithMaxWait sets how long a trace may be held, counted from its first
// ended span, when its local root span does not end. It is then decided,
// by the keep rules, with the spans at hand; later spans follow the
// decision. Values ≤ 0 are ignored.
//
// Default: DefaultMaxWait (30 s).
func WithMaxWait(d time.Duration) Option {
	return optionFunc(func(c config) config {
		if d > 0 {
			c.maxWait = d
		}
		return c
	})
}

// WithLatencyThreshold keeps traces whose held spans cover at least d, from
// the earliest start to the latest end. 0 or less disables the latency rule.
//
// Default: disabled.
func WithLatencyThreshold(d time.Duration) Option {
	return optionFunc(func(c config) config {
		c.latency = max(d, 0)
		return c
	})
}

// WithPredicate keeps traces in which keep returns true for at least one
// span. keep is called from the background goroutine, or from the goroutine
// that ends a span when limits force an early decision, never under a lock
// of this package; it must be safe for concurrent use and must not block.
// It is handed the sampler's copy of each span and may keep it; so that
// it can, the copies are not reused with a predicate set, and holding a
// span allocates its copy. Nil removes the predicate.
//
// Default: none.
func WithPredicate(keep func(sdktrace.ReadOnlySpan) bool) Option {
	return optionFunc(func(c config) config {
		c.predicate = keep
		return c
	})
}

// WithMaxTraces bounds the number of undecided traces held, in total over
// all shards. When a new trace would exceed it, the oldest held trace is
// decided early, by the keep rules, with the spans at hand. Values ≤ 0
// are ignored.
//
// Default: DefaultMaxTraces (10 000).
func WithMaxTraces(n int) Option {
	return optionFunc(func(c config) config {
		if n > 0 {
			c.maxTraces = n
		}
		return c
	})
}

// WithMaxSpansPerTrace bounds the spans held for one trace. A trace that
// reaches it is decided early, by the keep rules, and its later spans
// follow that decision.
// Values ≤ 0 are ignored.
//
// Default: DefaultMaxSpansPerTrace (1 000).
func WithMaxSpansPerTrace(n int) Option {
	return optionFunc(func(c config) config {
		if n > 0 {
			c.maxSpansPerTrace = n
		}
		return c
	})
}

// WithMaxBytes bounds the memory held by undecided spans, in total over all
// shards: everything a held span keeps alive. A held span is the
// sampler's copy, whose strings (attributes of every type, events and
// links included) are copied into memory of its own, so that none keeps a
// larger original alive, and whose size is counted from its buffers (see
// the package documentation); the heap held spans retain stays within n
// plus 20%. One trace may use the whole of it. When it is exceeded, the
// oldest held traces are decided early, by the keep rules, until it holds
// again. Values ≤ 0 are ignored.
//
// Default: DefaultMaxBytes (64 MiB).
func WithMaxBytes(n int64) Option {
	return optionFunc(func(c config) config {
		if n > 0 {
			c.maxBytes = n
		}
		return c
	})
}

// WithDecisionCacheSize sets how many decided trace IDs are remembered so
// that spans ending after their trace was decided follow the decision. 0
// disables the cache; negative values are ignored.
//
// Default: DefaultDecisionCache (50 000).
func WithDecisionCacheSize(n int) Option {
	return optionFunc(func(c config) config {
		if n >= 0 {
			c.decisionCache = n
		}
		return c
	})
}

// WithMaxKeptPerSecond caps the traces kept by the tail (error, latency or
// predicate) per second, so that an outage does not turn into a flood of
// traces. Head-sampled traces are never capped. Traces over the cap are
// released and counted (Stats.RateLimited). 0 or less removes the cap.
//
// The cap is a token bucket: it refills at n traces per second up to its
// burst (WithMaxKeptBurst), so a short burst of failures is kept whole
// while a sustained one is held to n per second. With the defaults, 500
// failing traces at once are kept, then 100 per second.
//
// Default: DefaultMaxKeptPerSecond (100).
func WithMaxKeptPerSecond(n float64) Option {
	return optionFunc(func(c config) config {
		c.maxKeptPerSecond = n
		return c
	})
}

// WithMaxKeptBurst sets how many tail-kept traces the cap of
// WithMaxKeptPerSecond lets through at once. A larger burst keeps every
// trace of a longer spike of failures, at the price of a larger spike of
// exported spans and memory downstream when it happens; a burst of 1
// spreads kept traces evenly. Values ≤ 0 restore the default.
//
// Default: DefaultKeptBurstSeconds (5) seconds' worth of the cap, at
// least 1: 500 with the default cap.
func WithMaxKeptBurst(n int) Option {
	return optionFunc(func(c config) config {
		c.keptBurst = max(n, 0)
		return c
	})
}

// WithMeterProvider sets the MeterProvider for the sampler's own metrics.
//
// Default: otel.GetMeterProvider() at construction time.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c config) config {
		c.meterProvider = mp
		return c
	})
}

// WithDryRun, enabled, makes the sampler decide as usual but hand every
// recorded span downstream, sampled, marked with the decision it would
// have taken (WouldKeepKey and DecisionKey), so that its choices can be
// seen in the backend before they are trusted. Head decisions, the keep
// rules, the limits, early decisions and the cap work as without it; only
// what is handed on differs. Propagation does not: other services see the
// sampled flag the head chose, as they will when dry run is off. Counters
// and metrics count what would have been done (SpansReleased counts the
// spans a dry run hands on unkept).
//
// Default: disabled.
func WithDryRun(enabled bool) Option {
	return optionFunc(func(c config) config {
		c.dryRun = enabled
		return c
	})
}

// WithLogger sets the logger that reports, once each, what keeps the
// sampler from working as configured: self-metrics that cannot be
// created, an ErrorKeeper registered only as the sampler or only as a span
// processor. A nil logger, the default, sends those reports to the
// OpenTelemetry error handler (otel.Handle).
func WithLogger(l *zap.Logger) Option {
	return optionFunc(func(c config) config {
		c.logger = l
		return c
	})
}

// withClock injects the clock used for deadlines and the rate cap.
func withClock(clk clockwork.Clock) Option {
	return optionFunc(func(c config) config {
		c.clock = clk
		return c
	})
}

// withTick sets the sweep period of the background goroutine.
func withTick(d time.Duration) Option {
	return optionFunc(func(c config) config {
		c.tick = d
		return c
	})
}
