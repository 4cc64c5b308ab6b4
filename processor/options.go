package processor

import (
	"time"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"
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
	// DefaultLogInterval is the shortest time between two reports the
	// Guard logs through the logger given with WithLogger.
	DefaultLogInterval = time.Minute
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
	reportOnly    bool
	routeNames    bool
	logger        *zap.Logger
	logInterval   time.Duration
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
		logInterval:   DefaultLogInterval,
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
// key before further new values are replaced with OverflowValue (see the
// package documentation on what that does to queries, and on choosing
// limits). The
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
// OverflowValue. A name admitted in one scope passes in every other scope
// without counting there. The default is DefaultSpanNameLimit; a value
// below 1 is ignored and one above 1<<20 is lowered to 1<<20.
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
// key, and the span names WithHTTPRouteSpanNames kept, once per interval d,
// so that a long-running process can follow values that change over time.
// The reset happens at the first span processed after each interval has
// elapsed. The default, and any d <= 0, is never: admitted values are kept
// for the life of the Guard.
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
// url.full, http.route, http.target and http.url. In a URL it templates
// only the path, query and fragment, and keeps the scheme and authority
// (userinfo, host, IP address, port) as they are. Empty keys are ignored.
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

// WithReportOnly turns the report-only mode on or off; it is off by
// default. In report-only mode the Guard decides about every span name and
// attribute value exactly as it would otherwise, admitting values up to
// the limits and counting in Stats and the self-metrics what it would
// replace and normalize, but it rewrites nothing: names and values reach
// the backend as they are, and a span in which something would have been
// replaced with OverflowValue gets the attribute WouldOverflowKey = true
// instead of OverflowKey. Run it on live traffic to size the limits before
// letting the Guard act; Stats.TopOffenders and the log of WithLogger say
// which keys and scopes would overflow, and by how much.
func WithReportOnly(enabled bool) Option {
	return optionFunc(func(c config) config {
		c.reportOnly = enabled
		return c
	})
}

// WithHTTPRouteSpanNames turns on or off the renaming of HTTP server spans
// after the semantic conventions; it is off by default. When on, a span of
// kind server that carries a non-empty string http.route is named
// "{method} {http.route}", where {method} is the http.request.method
// attribute, or "HTTP" when that is missing or "_OTHER" (for example
// "GET /users/{id}"); other spans keep their name. The name is then
// guarded like any other, so it is counted against the span name limit and
// goes through the normalizers, and a span without a route falls back to
// its normalized name.
//
// With WithDownstream the final attributes decide, including an http.route
// set after start, which is how most HTTP instrumentation records it.
// Without it, the Guard sees only the attributes present at start.
func WithHTTPRouteSpanNames(enabled bool) Option {
	return optionFunc(func(c config) config {
		c.routeNames = enabled
		return c
	})
}

// WithLogger makes the Guard log what it replaces through l: at most one
// warning per log interval (see WithLogInterval), only when values were
// replaced since the last one, naming the keys and scopes that overflow
// most with their counts (Stats.TopOffenders), and one last such warning
// at Shutdown. The lines are written by a goroutine of the Guard, never on
// the path of a span; Shutdown stops it. The logger also receives the
// error, if any, met while setting up the Guard's self-metrics. The
// default, and a nil l, is no logging: that error then goes to the
// OpenTelemetry error handler.
func WithLogger(l *zap.Logger) Option {
	return optionFunc(func(c config) config {
		c.logger = l
		return c
	})
}

// WithLogInterval sets the shortest time between two warnings logged
// through WithLogger. The default is DefaultLogInterval; a d <= 0 is
// ignored.
func WithLogInterval(d time.Duration) Option {
	return optionFunc(func(c config) config {
		if d > 0 {
			c.logInterval = d
		}
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

// withClock sets the clock that drives the reset interval and the log
// interval.
func withClock(clk clockwork.Clock) Option {
	return optionFunc(func(c config) config {
		if clk != nil {
			c.clock = clk
		}
		return c
	})
}
