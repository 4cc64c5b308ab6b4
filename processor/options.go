package processor

import (
	"time"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Defaults applied by CardinalityGuard when no option overrides them.
const (
	// DefaultValueLimit is the number of distinct values admitted per
	// attribute key.
	DefaultValueLimit = 1000
	// DefaultSpanNameLimit is the number of distinct span names admitted per
	// instrumentation scope.
	DefaultSpanNameLimit = 1000
	// DefaultMaxKeys is the number of attribute keys, and separately the
	// number of instrumentation scopes, whose values are tracked.
	DefaultMaxKeys = 512
)

// maxLimit caps every limit option, so that the worst-case memory stays
// computable and far from overflow.
const maxLimit = 1 << 20

// maxKeyLength is the longest attribute key or scope name that is tracked.
// Longer keys are treated as untracked so that the key table itself stays
// bounded in bytes.
const maxKeyLength = 256

// builtinNormalizedKeys are the attribute keys the built-in identifier
// normalizer applies to by default, in addition to span names.
var builtinNormalizedKeys = []string{
	"url.path",
	"url.full",
	"http.route",
	"http.target",
	"http.url",
}

// config is the resolved configuration of a Guard.
type config struct {
	next          sdktrace.SpanProcessor
	valueLimit    int
	spanNameLimit int
	maxKeys       int
	keyLimits     map[string]int
	exempt        map[string]struct{}
	reset         time.Duration
	normalizers   []Normalizer
	builtin       bool
	builtinKeys   map[string]struct{}
	meterProvider metric.MeterProvider
	clock         clockwork.Clock
}

func newConfig(opts []Option) config {
	c := config{
		valueLimit:    DefaultValueLimit,
		spanNameLimit: DefaultSpanNameLimit,
		maxKeys:       DefaultMaxKeys,
		builtin:       true,
		builtinKeys:   make(map[string]struct{}, len(builtinNormalizedKeys)),
		keyLimits:     map[string]int{},
		exempt:        map[string]struct{}{},
	}
	for _, k := range builtinNormalizedKeys {
		c.builtinKeys[k] = struct{}{}
	}
	for _, o := range opts {
		if o != nil {
			c = o.apply(c)
		}
	}
	if c.meterProvider == nil {
		c.meterProvider = otel.GetMeterProvider()
	}
	if c.clock == nil {
		c.clock = clockwork.NewRealClock()
	}
	return c
}

// Option configures a Guard. Options are applied in order; a later option
// overrides an earlier one where they conflict. The Guard reads no
// environment variables: its configuration is the defaults and the options.
type Option interface {
	apply(config) config
}

type optionFunc func(config) config

func (f optionFunc) apply(c config) config { return f(c) }

// WithDownstream makes the Guard wrap next: every OnStart, OnEnd,
// ForceFlush and Shutdown call is forwarded to next, and at OnEnd next
// receives a sanitized read-only view of the ended span, covering its final
// name and every attribute, including those set after the span started.
// Spans that need no change are passed through as they are.
//
// Without WithDownstream the Guard rewrites the span in OnStart, which only
// covers the name and the attributes present when the span starts.
// A nil next is ignored.
func WithDownstream(next sdktrace.SpanProcessor) Option {
	return optionFunc(func(c config) config {
		if next != nil {
			c.next = next
		}
		return c
	})
}

// WithValueLimit sets how many distinct values are admitted per attribute
// key before further new values are replaced with OverflowValue. The
// default is DefaultValueLimit; a value below 1 is ignored and one above
// 1<<20 is lowered to 1<<20. Per-key limits set with WithKeyLimit take
// precedence.
func WithValueLimit(n int) Option {
	return optionFunc(func(c config) config {
		if n >= 1 {
			c.valueLimit = min(n, maxLimit)
		}
		return c
	})
}

// WithKeyLimit sets the number of distinct values admitted for one
// attribute key, overriding WithValueLimit for that key. An empty key or a
// limit below 1 is ignored, a limit above 1<<20 is lowered to 1<<20, and
// the last call for a key wins.
func WithKeyLimit(key string, n int) Option {
	return optionFunc(func(c config) config {
		if key == "" || n < 1 {
			return c
		}
		m := make(map[string]int, len(c.keyLimits)+1)
		for k, v := range c.keyLimits {
			m[k] = v
		}
		m[key] = min(n, maxLimit)
		c.keyLimits = m
		return c
	})
}

// WithSpanNameLimit sets how many distinct span names are admitted per
// instrumentation scope before further new names are replaced with
// OverflowValue. The default is DefaultSpanNameLimit; a value below 1 is
// ignored and one above 1<<20 is lowered to 1<<20.
func WithSpanNameLimit(n int) Option {
	return optionFunc(func(c config) config {
		if n >= 1 {
			c.spanNameLimit = min(n, maxLimit)
		}
		return c
	})
}

// WithMaxKeys bounds how many attribute keys, and separately how many
// instrumentation scopes, are tracked. Values of a key that arrives once the
// bound is reached, and names of spans from such a scope, are replaced with
// OverflowValue. The default is DefaultMaxKeys; a value below 1 is ignored
// and one above 1<<20 is lowered to 1<<20. Exempt keys do not count towards
// the bound.
func WithMaxKeys(n int) Option {
	return optionFunc(func(c config) config {
		if n >= 1 {
			c.maxKeys = min(n, maxLimit)
		}
		return c
	})
}

// WithExemptKeys lists attribute keys that are never counted, normalized or
// replaced, whatever WithKeyLimit or WithNormalizedKeys say about them.
// Calls accumulate; empty keys are ignored. By default only OverflowKey is
// exempt.
func WithExemptKeys(keys ...string) Option {
	return optionFunc(func(c config) config {
		m := make(map[string]struct{}, len(c.exempt)+len(keys))
		for k := range c.exempt {
			m[k] = struct{}{}
		}
		for _, k := range keys {
			if k != "" {
				m[k] = struct{}{}
			}
		}
		c.exempt = m
		return c
	})
}

// WithResetInterval makes the Guard forget every admitted value and tracked
// key once per interval d, so that a long-running process can follow values
// that change over time. The reset happens at the first span processed after
// each interval has elapsed. The default, and any d <= 0, is never: admitted
// values are kept for the life of the Guard.
func WithResetInterval(d time.Duration) Option {
	return optionFunc(func(c config) config {
		if d > 0 {
			c.reset = d
		} else {
			c.reset = 0
		}
		return c
	})
}

// WithNormalizer adds a Normalizer that runs on every string attribute value
// and every span name before it is counted. Normalizers run in the order
// they were added, each on the previous one's output, and before the
// built-in normalizer. A nil Normalizer is ignored.
func WithNormalizer(n Normalizer) Option {
	return optionFunc(func(c config) config {
		if n != nil {
			c.normalizers = append(c.normalizers[:len(c.normalizers):len(c.normalizers)], n)
		}
		return c
	})
}

// WithNormalizedKeys adds attribute keys the built-in identifier normalizer
// applies to. By default it applies to span names and to the keys url.path,
// url.full, http.route, http.target and http.url. Empty keys are ignored.
func WithNormalizedKeys(keys ...string) Option {
	return optionFunc(func(c config) config {
		m := make(map[string]struct{}, len(c.builtinKeys)+len(keys))
		for k := range c.builtinKeys {
			m[k] = struct{}{}
		}
		for _, k := range keys {
			if k != "" {
				m[k] = struct{}{}
			}
		}
		c.builtinKeys = m
		return c
	})
}

// WithBuiltinNormalizer turns the built-in identifier normalizer on or off.
// It is on by default. Normalizers added with WithNormalizer run either way.
func WithBuiltinNormalizer(enabled bool) Option {
	return optionFunc(func(c config) config {
		c.builtin = enabled
		return c
	})
}

// WithMeterProvider sets the MeterProvider the Guard reports its own
// metrics to. The default is otel.GetMeterProvider() at construction time.
// A nil provider is ignored.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c config) config {
		if mp != nil {
			c.meterProvider = mp
		}
		return c
	})
}

// withClock sets the clock that drives the reset interval.
func withClock(clk clockwork.Clock) Option {
	return optionFunc(func(c config) config {
		if clk != nil {
			c.clock = clk
		}
		return c
	})
}
