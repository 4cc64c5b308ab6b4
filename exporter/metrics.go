package exporter

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/otelconv"

	"github.com/tracekeeper/tracekeeper/internal/selfobs"
	"github.com/tracekeeper/tracekeeper/internal/sender"
)

// The project's own metric names; the others come from the semantic
// conventions' otelconv package.
const (
	metricQueueSize     = "tracekeeper.exporter.queue.size"
	metricQueueCapacity = "tracekeeper.exporter.queue.capacity"
	metricQueueBytes    = "tracekeeper.exporter.queue.bytes"
	metricMemoryUsed    = "tracekeeper.exporter.memory.used"
	metricMemoryBudget  = "tracekeeper.exporter.memory.budget"
	metricConcurrency   = "tracekeeper.exporter.concurrency.limit"
	metricRoundTrip     = "tracekeeper.exporter.round_trip"
	metricRepaired      = "tracekeeper.exporter.string.repaired"
	metricUnwritten     = "tracekeeper.exporter.dropped_writer.unwritten"

	scopeName = "github.com/tracekeeper/tracekeeper/exporter"
)

// instances numbers exporters for otel.component.name.
var instances atomic.Int64

// selfMetrics publishes the exporter's Stats as metrics. Counters and
// gauges are observed from Stats at collection time, so the export path
// pays nothing for them; only the duration of each export operation is
// recorded as it happens.
type selfMetrics struct {
	duration otelconv.SDKExporterOperationDuration
	reg      *selfobs.Registration
	base     []attribute.KeyValue
	grpc     bool

	mu   sync.Mutex
	sets map[sender.Last]metric.MeasurementOption // by outcome, bounded by the status codes seen
}

func newSelfMetrics(cfg config, e *Exporter) *selfMetrics {
	m := &selfMetrics{grpc: cfg.protocol == ProtocolGRPC, sets: map[sender.Last]metric.MeasurementOption{}}
	componentType := semconv.OTelComponentTypeOtlpHTTPSpanExporter
	if m.grpc {
		componentType = semconv.OTelComponentTypeOtlpGRPCSpanExporter
	}
	m.base = []attribute.KeyValue{
		componentType,
		semconv.OTelComponentName(fmt.Sprintf("%s/%d", componentType.Value.AsString(), instances.Add(1)-1)),
	}
	if addr, port, ok := server(cfg); ok {
		m.base = append(m.base, semconv.ServerAddress(addr))
		if port > 0 {
			m.base = append(m.base, semconv.ServerPort(port))
		}
	}
	base := selfobs.Attributes(m.base...)

	b := selfobs.New(cfg.meterProvider, scopeName, "exporter")
	var err error
	m.duration, err = otelconv.NewSDKExporterOperationDuration(b.Meter(),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60))
	b.Add(err)
	exported, err := otelconv.NewSDKExporterSpanExportedObservable(b.Meter())
	b.Add(err)
	inflight, err := otelconv.NewSDKExporterSpanInflightObservable(b.Meter())
	b.Add(err)
	qsize := b.Gauge(metricQueueSize, "{span}", "The number of spans waiting in the exporter's queue.")
	qcap := b.Gauge(metricQueueCapacity, "{span}", "The maximum number of spans the exporter's queue holds.")
	qbytes := b.Gauge(metricQueueBytes, "By", "The memory held by the encoded spans waiting in the exporter's queue.")
	memUsed := b.Gauge(metricMemoryUsed, "By", "The memory held by queued spans and requests in flight.")
	memBudget := b.Gauge(metricMemoryBudget, "By", "The memory queued spans and requests in flight may hold.")
	limit := b.Gauge(metricConcurrency, "{request}", "The number of requests that may be in flight now.")
	rtt := b.FloatGauge(metricRoundTrip, "s", "The recent round-trip time of requests, which the concurrency limit adapts to.")
	repaired := b.Counter(metricRepaired, "{value}", "String values with invalid UTF-8 repaired before sending.")
	unwritten := b.Counter(metricUnwritten, "{request}", "Dropped requests the dropped-spans writer did not receive.")

	// One attribute set per drop reason, built once.
	var reasonAttrs [len(reasons)]metric.MeasurementOption
	for i, r := range reasons {
		reasonAttrs[i] = selfobs.Attributes(append(m.base[:len(m.base):len(m.base)], semconv.ErrorTypeKey.String(string(r)))...)
	}
	m.reg = b.Observe(func(o metric.Observer) {
		s := e.Stats()
		o.ObserveInt64(exported.Inst(), s.Exported, base)
		for i, r := range reasons {
			if n := s.Dropped.Get(r); n > 0 {
				o.ObserveInt64(exported.Inst(), n, reasonAttrs[i])
			}
		}
		// Passed to the exporter and neither exported nor failed yet, as
		// the semantic conventions define it: queued and spooled spans
		// too, not only those being sent.
		o.ObserveInt64(inflight.Inst(), s.Queued+s.Spooled+s.InFlight, base)
		o.ObserveInt64(qsize, s.Queued, base)
		o.ObserveInt64(qcap, s.QueueCapacity, base)
		o.ObserveInt64(qbytes, s.QueueBytes, base)
		o.ObserveInt64(memUsed, s.QueueBytes+s.InFlightBytes, base)
		o.ObserveInt64(memBudget, s.MemoryBudget, base)
		o.ObserveInt64(limit, s.ConcurrencyLimit, base)
		o.ObserveFloat64(rtt, s.RoundTrip.Seconds(), base)
		o.ObserveInt64(repaired, s.Repaired, base)
		o.ObserveInt64(unwritten, s.Unwritten, base)
	}, exported.Inst(), inflight.Inst(), qsize, qcap, qbytes, memUsed, memBudget, limit, rtt, repaired, unwritten)
	selfobs.Report(cfg.logger, b.Err())
	return m
}

// recordOperation records one export operation: every attempt and wait of
// one request, with the status and error type of the last attempt.
func (m *selfMetrics) recordOperation(d time.Duration, last sender.Last) {
	m.duration.Inst().Record(context.Background(), d.Seconds(), m.attrs(last))
}

func (m *selfMetrics) attrs(last sender.Last) metric.MeasurementOption {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.sets[last]; ok {
		return o
	}
	kvs := append([]attribute.KeyValue(nil), m.base...)
	if last.Code != "" {
		if m.grpc {
			kvs = append(kvs, semconv.RPCResponseStatusCode(last.Code))
		} else if sc, err := strconv.Atoi(last.Code); err == nil {
			kvs = append(kvs, semconv.HTTPResponseStatusCode(sc))
		}
	}
	if last.ErrType != "" {
		kvs = append(kvs, semconv.ErrorTypeKey.String(last.ErrType))
	}
	o := selfobs.Attributes(kvs...)
	if len(m.sets) < 64 {
		m.sets[last] = o
	}
	return o
}

// retire ends the observations after the next collection, which sees the
// final figures.
func (m *selfMetrics) retire() { m.reg.Retire() }

// server returns the server.address and server.port requests go to; port
// is zero when there is none. ok is false for an invalid endpoint.
func server(cfg config) (addr string, port int, ok bool) {
	target, u, err := cfg.resolveEndpoint()
	switch {
	case err != nil:
		return "", 0, false
	case target != "":
		addr, port = targetServer(target)
		return addr, port, true
	}
	port, _ = cfg.port(u)
	return u.Hostname(), port, true
}

// targetServer returns the server.address and server.port of a gRPC
// target name: the host and port of its endpoint when that is host:port
// ("dns:///collector:4317"), else the endpoint as it is, without a port
// (zero): the socket's path for "unix:///run/otlp.sock".
func targetServer(target string) (addr string, port int) {
	u, err := url.Parse(target)
	if err != nil {
		return target, 0
	}
	ep := u.Opaque
	if ep == "" {
		ep = u.Path
		if !strings.HasPrefix(u.Scheme, "unix") {
			ep = strings.TrimPrefix(ep, "/")
		}
	}
	if host, p, err := net.SplitHostPort(ep); err == nil {
		if n, err := strconv.Atoi(p); err == nil && n > 0 && n <= 65535 {
			return host, n
		}
	}
	return ep, 0
}
