package exporter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"

	"github.com/tracekeeper/tracekeeper/internal/transport"
)

// Metric names. The first three follow the OpenTelemetry semantic
// conventions for SDK exporters; the queue metrics are the project's own.
const (
	metricSpanExported      = "otel.sdk.exporter.span.exported"
	metricSpanInflight      = "otel.sdk.exporter.span.inflight"
	metricOperationDuration = "otel.sdk.exporter.operation.duration"
	metricQueueSize         = "tracekeeper.exporter.queue.size"
	metricQueueCapacity     = "tracekeeper.exporter.queue.capacity"
	metricQueueBytes        = "tracekeeper.exporter.queue.bytes"
	metricQueueCapBytes     = "tracekeeper.exporter.queue.capacity_bytes"
	metricRepaired          = "tracekeeper.exporter.string.repaired"

	scopeName = "github.com/tracekeeper/tracekeeper/exporter"
)

const (
	httpStatusKey attribute.Key = "http.response.status_code"
	grpcStatusKey attribute.Key = "rpc.grpc.status_code"
)

// instances numbers exporters for otel.component.name.
var instances atomic.Int64

// selfMetrics publishes the exporter's Stats as metrics. Counters and
// gauges are observed from Stats at collection time, so the export path
// pays nothing for them; only the duration of each request is recorded as
// it happens.
type selfMetrics struct {
	duration metric.Float64Histogram
	// statusKey names the attribute carrying the answer's status code.
	statusKey attribute.Key
	reg       metric.Registration
	base      attribute.Set
	okAttrs   metric.MeasurementOption
}

func newSelfMetrics(cfg config, e *Exporter) *selfMetrics {
	m := &selfMetrics{statusKey: httpStatusKey}
	componentType := "otlp_http_span_exporter"
	if cfg.protocol == ProtocolGRPC {
		m.statusKey, componentType = grpcStatusKey, "otlp_grpc_span_exporter"
	}
	meter := cfg.meterProvider.Meter(scopeName)
	attrs := []attribute.KeyValue{
		attribute.String("otel.component.type", componentType),
		attribute.String("otel.component.name", fmt.Sprintf("%s/%d", componentType, instances.Add(1)-1)),
	}
	if u, err := cfg.targetURL(); err == nil {
		host, port, _ := net.SplitHostPort(u.Host)
		if host == "" {
			host = u.Host
		}
		attrs = append(attrs, attribute.String("server.address", host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attribute.Int("server.port", p))
		}
	}
	m.base = attribute.NewSet(attrs...)
	m.okAttrs = metric.WithAttributeSet(m.base)

	var errs []error
	var err error
	m.duration, err = meter.Float64Histogram(metricOperationDuration,
		metric.WithUnit("s"),
		metric.WithDescription("The duration of exporting a batch of spans: one attempt to send a request."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10))
	errs = append(errs, err)
	exported, err := meter.Int64ObservableCounter(metricSpanExported,
		metric.WithUnit("{span}"),
		metric.WithDescription("The number of spans for which the export has finished, either successful or failed (error.type says why)."))
	errs = append(errs, err)
	inflight, err := meter.Int64ObservableUpDownCounter(metricSpanInflight,
		metric.WithUnit("{span}"),
		metric.WithDescription("The number of spans being sent, retry waits included."))
	errs = append(errs, err)
	qsize, err := meter.Int64ObservableGauge(metricQueueSize,
		metric.WithUnit("{span}"), metric.WithDescription("The number of spans waiting in the exporter's queue."))
	errs = append(errs, err)
	qcap, err := meter.Int64ObservableGauge(metricQueueCapacity,
		metric.WithUnit("{span}"), metric.WithDescription("The maximum number of spans the exporter's queue holds."))
	errs = append(errs, err)
	qbytes, err := meter.Int64ObservableGauge(metricQueueBytes,
		metric.WithUnit("By"), metric.WithDescription("The memory held by the encoded spans waiting in the exporter's queue."))
	errs = append(errs, err)
	qcapBytes, err := meter.Int64ObservableGauge(metricQueueCapBytes,
		metric.WithUnit("By"), metric.WithDescription("The memory the encoded spans waiting in the exporter's queue may hold."))
	errs = append(errs, err)
	repaired, err := meter.Int64ObservableCounter(metricRepaired,
		metric.WithUnit("{value}"), metric.WithDescription("String values with invalid UTF-8 repaired before sending."))
	errs = append(errs, err)

	// One attribute set per drop reason, built once.
	var reasonAttrs [len(reasons)]metric.ObserveOption
	for i, r := range reasons {
		reasonAttrs[i] = metric.WithAttributeSet(attribute.NewSet(append(attrs[:len(attrs):len(attrs)],
			attribute.String("error.type", string(r)))...))
	}
	obs := m.okAttrs
	m.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := e.Stats()
		o.ObserveInt64(exported, s.Exported, obs)
		for i, r := range reasons {
			if n := s.Dropped.Get(r); n > 0 {
				o.ObserveInt64(exported, n, reasonAttrs[i])
			}
		}
		o.ObserveInt64(inflight, s.InFlight, obs)
		o.ObserveInt64(qsize, s.Queued, obs)
		o.ObserveInt64(qcap, s.QueueCapacity, obs)
		o.ObserveInt64(qbytes, s.QueueBytes, obs)
		o.ObserveInt64(qcapBytes, s.QueueCapacityBytes, obs)
		o.ObserveInt64(repaired, s.Repaired, obs)
		return nil
	}, exported, inflight, qsize, qcap, qbytes, qcapBytes, repaired)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		cfg.logger.Warn("tracekeeper exporter: self-metrics unavailable", zap.Error(err))
	}
	return m
}

// recordAttempt records the duration of one attempt and its outcome.
func (m *selfMetrics) recordAttempt(d time.Duration, resp transport.Response, err error) {
	if m.duration == nil {
		return
	}
	if err == nil {
		m.duration.Record(context.Background(), d.Seconds(), metric.WithAttributeSet(
			m.withStatus(resp.Status, true, "")))
		return
	}
	te := transport.Classify(err)
	errType := "transport"
	switch {
	case te.Status != 0 && m.statusKey == grpcStatusKey:
		errType = codes.Code(te.Status).String()
	case te.Status != 0:
		errType = strconv.Itoa(te.Status)
	case errors.Is(err, context.DeadlineExceeded):
		errType = "timeout"
	case errors.Is(err, context.Canceled):
		errType = "canceled"
	}
	m.duration.Record(context.Background(), d.Seconds(), metric.WithAttributeSet(
		m.withStatus(te.Status, te.Status != 0, errType)))
}

func (m *selfMetrics) withStatus(status int, answered bool, errType string) attribute.Set {
	kvs := m.base.ToSlice()
	if answered {
		kvs = append(kvs, m.statusKey.Int(status))
	}
	if errType != "" {
		kvs = append(kvs, attribute.String("error.type", errType))
	}
	return attribute.NewSet(kvs...)
}

// close stops the observations.
func (m *selfMetrics) close() {
	if m.reg != nil {
		_ = m.reg.Unregister()
	}
}
