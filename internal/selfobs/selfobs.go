// Package selfobs is how tracekeeper's components publish their own
// metrics, one way for all of them.
//
// A component builds its instruments with a Builder, which records every
// instrument error instead of returning it, and registers one callback
// that reads the component's counters at collection time: the hot path
// only bumps atomics or takes the lock it already holds. Errors are
// reported once, joined, through Report. A component that shuts down
// retires its registration instead of removing it, so the collection
// after Shutdown still sees the final counts (the drops Shutdown caused
// among them).
package selfobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// Builder creates the instruments of one component. Instrument errors are
// collected; Err returns them joined. The zero value is not usable: use
// New.
type Builder struct {
	meter     metric.Meter
	component string
	errs      []error
}

// New returns a Builder for the component (its package name, which
// prefixes errors) on the meter named scope. A nil mp means the global
// MeterProvider.
func New(mp metric.MeterProvider, scope, component string) *Builder {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	return &Builder{meter: mp.Meter(scope), component: component}
}

// Meter returns the builder's meter, for instruments built elsewhere (the
// semantic-conventions helpers); pass their errors to Add.
func (b *Builder) Meter() metric.Meter { return b.meter }

// Add records an error from creating an instrument elsewhere.
func (b *Builder) Add(err error) {
	if err != nil {
		b.errs = append(b.errs, err)
	}
}

// Counter creates an observable monotonic counter.
func (b *Builder) Counter(name, unit, desc string) metric.Int64ObservableCounter {
	c, err := b.meter.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.Add(err)
	return c
}

// UpDownCounter creates an observable up-down counter.
func (b *Builder) UpDownCounter(name, unit, desc string) metric.Int64ObservableUpDownCounter {
	c, err := b.meter.Int64ObservableUpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.Add(err)
	return c
}

// Gauge creates an observable gauge.
func (b *Builder) Gauge(name, unit, desc string) metric.Int64ObservableGauge {
	g, err := b.meter.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.Add(err)
	return g
}

// FloatGauge creates an observable gauge of float values.
func (b *Builder) FloatGauge(name, unit, desc string) metric.Float64ObservableGauge {
	g, err := b.meter.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.Add(err)
	return g
}

// Histogram creates a synchronous histogram with explicit bucket bounds
// (none: the SDK's defaults).
func (b *Builder) Histogram(name, unit, desc string, bounds ...float64) metric.Float64Histogram {
	opts := []metric.Float64HistogramOption{metric.WithUnit(unit), metric.WithDescription(desc)}
	if len(bounds) > 0 {
		opts = append(opts, metric.WithExplicitBucketBoundaries(bounds...))
	}
	h, err := b.meter.Float64Histogram(name, opts...)
	b.Add(err)
	return h
}

// Observe registers observe as the callback of the observable instruments
// insts. It returns a Registration even when registering failed (the
// error is recorded), so callers need not check.
func (b *Builder) Observe(observe func(metric.Observer), insts ...metric.Observable) *Registration {
	r := &Registration{}
	reg, err := b.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if r.quiet.Load() {
			return nil
		}
		// Read before observing: the figures of a collection that began
		// before Retire may not be the final ones, and it is not the last.
		retired := r.retired.Load()
		observe(o)
		if retired {
			r.quiet.Store(true)
			// Unregistering from inside a callback would wait on the
			// collection that is running it.
			r.once.Do(func() { go r.unregister() })
		}
		return nil
	}, insts...)
	b.Add(err)
	r.mu.Lock()
	r.reg = reg
	r.mu.Unlock()
	return r
}

// Err returns the errors recorded so far, joined and prefixed with the
// component's name, or nil.
func (b *Builder) Err() error {
	if err := errors.Join(b.errs...); err != nil {
		return fmt.Errorf("%s: self-metrics unavailable: %w", b.component, err)
	}
	return nil
}

// Report sends err, if any, to log at warning level, or to the
// OpenTelemetry error handler when the component has no logger, as Warn
// does. A component works without its metrics: this is the one report it
// makes.
func Report(log *zap.Logger, err error) {
	if err != nil {
		Warn(log, "tracekeeper: self-metrics unavailable", err)
	}
}

// Warn writes msg at warning level to log, with err as its error field
// when err is not nil; without a logger it hands err, or msg as an error,
// to the OpenTelemetry error handler. It writes from a goroutine of its
// own, so that no constructor and no span's path waits on a logger or a
// handler; the channel returned is closed once it is written.
func Warn(log *zap.Logger, msg string, err error) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		switch {
		case log != nil && err != nil:
			log.Warn(msg, zap.Error(err))
		case log != nil:
			log.Warn(msg)
		case err != nil:
			otel.Handle(err)
		default:
			otel.Handle(errors.New(msg))
		}
	}()
	return done
}

// Registration is a callback registered by Observe.
type Registration struct {
	retired atomic.Bool
	quiet   atomic.Bool // the final figures were observed
	once    sync.Once
	mu      sync.Mutex
	reg     metric.Registration
}

// Retire ends the registration after the next collection, which sees the
// component's final figures; the collections after it see none. A
// component that is never collected again stays registered, reporting
// those figures.
func (r *Registration) Retire() { r.retired.Store(true) }

func (r *Registration) unregister() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reg != nil {
		_ = r.reg.Unregister()
		r.reg = nil
	}
}

// Attributes returns a measurement option for kvs, built once by the
// caller and reused on every observation.
func Attributes(kvs ...attribute.KeyValue) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(kvs...))
}
