// Package encodecost measures what turning a batch of spans into OTLP
// protobuf bytes costs the stock pipeline and ours, in one process, so that
// the ratio between them can be quoted and reproduced.
//
// The stock side is otlptrace.Exporter.ExportSpans with a client that
// proto.Marshal's the request as otlptracehttp does before it sends
// (tracetransform + proto.Marshal, HTTP left out); ours is
// otlpenc.Encoder.Encode into pooled requests, released after each batch.
// Turns alternate, the side that goes first alternating too, so that
// noise from the rest of the machine falls on both alike; each pair of
// turns gives one ratio, stock's time over ours (see Pairer.Run for how a
// turn is timed).
package encodecost

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/tracekeeper/tracekeeper/bench/internal/otlpparity"
	"github.com/tracekeeper/tracekeeper/internal/cputime"
	"github.com/tracekeeper/tracekeeper/internal/otlpenc"
)

// Batch is the number of spans encoded at once: the BatchSpanProcessor's
// default batch.
const Batch = 512

// MinPairs is the fewest pairs Run measures.
const MinPairs = 10

// SampleBatches is the number of batches each side encodes back to back
// in one timed turn.
const SampleBatches = 4

// MarshalClient is an otlptrace.Client that does in process what the stock
// otlptracehttp client does before it touches the network: wrap the
// ResourceSpans in an ExportTraceServiceRequest and proto.Marshal it. With
// Marshal false it does nothing, which leaves the stock transform alone.
type MarshalClient struct{ Marshal bool }

var _ otlptrace.Client = MarshalClient{}

// Start does nothing.
func (MarshalClient) Start(context.Context) error { return nil }

// Stop does nothing.
func (MarshalClient) Stop(context.Context) error { return nil }

// UploadTraces marshals the request when c.Marshal is set.
func (c MarshalClient) UploadTraces(_ context.Context, rs []*tracepb.ResourceSpans) error {
	if !c.Marshal {
		return nil
	}
	_, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: rs})
	return err
}

// Result is what Run measured.
type Result struct {
	// Spans is the batch size; Pairs the number of pairs timed.
	Spans, Pairs int
	// StockNs and OursNs are the median times per span of each side, in
	// nanoseconds.
	StockNs, OursNs float64
	// RatioMedian, RatioMin and RatioMax summarise the pairs' ratios,
	// stock's time over ours.
	RatioMedian, RatioMin, RatioMax float64
	// StockAllocs and OursAllocs are the allocations per span of each
	// side, over every timed batch.
	StockAllocs, OursAllocs float64
}

// Pairer holds both encoders and the batch they encode.
type Pairer struct {
	spans []sdktrace.ReadOnlySpan
	stock *otlptrace.Exporter
	enc   *otlpenc.Encoder
	out   []*otlpenc.Request
	err   error
}

// New records a batch of Batch server spans with eight attributes each
// from a real TracerProvider, builds both encoders and warms them.
func New(ctx context.Context) (*Pairer, error) {
	exp, err := otlptrace.New(ctx, MarshalClient{Marshal: true})
	if err != nil {
		return nil, fmt.Errorf("encodecost: stock exporter: %w", err)
	}
	p := &Pairer{spans: otlpparity.BenchSpans(Batch), stock: exp, enc: otlpenc.NewEncoder()}
	for range 3 {
		p.encodeStock(ctx)
		p.encodeOurs()
	}
	if p.err != nil {
		_ = exp.Shutdown(ctx)
		return nil, p.err
	}
	return p, nil
}

// Close shuts the stock exporter down.
func (p *Pairer) Close(ctx context.Context) error { return p.stock.Shutdown(ctx) }

func (p *Pairer) encodeStock(ctx context.Context) {
	if err := p.stock.ExportSpans(ctx, p.spans); err != nil && p.err == nil {
		p.err = fmt.Errorf("encodecost: stock: %w", err)
	}
}

func (p *Pairer) encodeOurs() {
	p.out, _ = p.enc.Encode(p.spans, 0, p.out[:0])
	if len(p.out) == 0 && p.err == nil {
		p.err = errors.New("encodecost: ours encoded no request")
	}
	for _, r := range p.out {
		r.Release()
	}
}

// Run times pairs pairs (at least MinPairs) and returns their summary.
//
// Both sides are timed alike, by the CPU time of the thread they run on
// (see package cputime), so that other processes taking the CPU do not
// count. Each side's turn starts with a garbage collection, so that no
// collection of the other side's garbage runs into its time, and one
// untimed batch, so that the caches hold this side's code and data; then
// SampleBatches batches are timed back to back, as the side runs batch
// after batch. The stock side's turn thus includes the collection work its
// own garbage makes its thread do (assists), not what the collector's
// background workers do on other threads: the ratio errs, if at all, in
// the stock side's favour.
func (p *Pairer) Run(ctx context.Context, pairs int) (Result, error) {
	pairs = max(pairs, MinPairs)
	n := float64(len(p.spans) * SampleBatches)
	stockNs, oursNs, ratios := make([]float64, pairs), make([]float64, pairs), make([]float64, pairs)
	var stockAllocs, oursAllocs uint64
	var ms runtime.MemStats
	defer cputime.LockThread()()
	timed := func(op func(), allocs *uint64) float64 {
		runtime.GC()
		op()
		runtime.ReadMemStats(&ms)
		m0 := ms.Mallocs
		t0 := cputime.Now()
		for range SampleBatches {
			op()
		}
		d := cputime.Now() - t0
		runtime.ReadMemStats(&ms)
		*allocs += ms.Mallocs - m0
		return float64(d.Nanoseconds()) / n
	}
	stock := func() { p.encodeStock(ctx) }
	for i := range pairs {
		if i%2 == 0 {
			stockNs[i] = timed(stock, &stockAllocs)
			oursNs[i] = timed(p.encodeOurs, &oursAllocs)
		} else {
			oursNs[i] = timed(p.encodeOurs, &oursAllocs)
			stockNs[i] = timed(stock, &stockAllocs)
		}
		ratios[i] = stockNs[i] / oursNs[i]
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
	}
	if p.err != nil {
		return Result{}, p.err
	}
	return Result{
		Spans: len(p.spans), Pairs: pairs,
		StockNs: median(stockNs), OursNs: median(oursNs),
		RatioMedian: median(ratios), RatioMin: slices.Min(ratios), RatioMax: slices.Max(ratios),
		StockAllocs: float64(stockAllocs) / (n * float64(pairs)),
		OursAllocs:  float64(oursAllocs) / (n * float64(pairs)),
	}, nil
}

// median returns the median of v, sorting it.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}
