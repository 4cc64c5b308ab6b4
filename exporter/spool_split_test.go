package exporter_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tracekeeper/tracekeeper/exporter"
	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

// verdict is a scripted backend's answer to one request.
type verdict int

const (
	accept verdict = iota
	tooLarge
	unavailable
)

// splitBackend refuses as too large (HTTP 413, gRPC RESOURCE_EXHAUSTED
// without RetryInfo) every request of more than limit spans, and answers
// the others as script says, one verdict per request, the last one over
// and over once the script is spent. It tallies the spans it accepts by
// span id, and checks the books of the exporter sending to it at every
// request.
type splitBackend struct {
	limit  int
	books  *booksWatch
	tally  *tally
	mu     sync.Mutex
	script []verdict
}

func (b *splitBackend) answer(req *coltracepb.ExportTraceServiceRequest) verdict {
	b.books.check()
	if otlptest.Count(req) > b.limit {
		return tooLarge
	}
	b.mu.Lock()
	v := b.script[0]
	if len(b.script) > 1 {
		b.script = b.script[1:]
	}
	b.mu.Unlock()
	if v == accept {
		b.tally.add(req)
	}
	return v
}

// start serves b over protocol ("http" or "grpc") and returns the options
// an exporter sends to it with.
func (b *splitBackend) start(t *testing.T, protocol string) []exporter.Option {
	t.Helper()
	switch protocol {
	case "grpc":
		rcv := otlptest.NewGRPC(t, func(_ context.Context, _ int, req *coltracepb.ExportTraceServiceRequest) error {
			switch b.answer(req) {
			case tooLarge:
				return status.Error(codes.ResourceExhausted, "grpc: received message larger than max")
			case unavailable:
				return status.Error(codes.Unavailable, "backend down")
			}
			return nil
		})
		return []exporter.Option{exporter.WithProtocol(exporter.ProtocolGRPC), exporter.WithEndpoint(rcv.Endpoint())}
	default:
		rcv := otlptest.NewHTTP(t, func(_ int, body []byte, w http.ResponseWriter, _ *http.Request) bool {
			var req coltracepb.ExportTraceServiceRequest
			if err := proto.Unmarshal(body, &req); err != nil {
				return false // the receiver answers 400 and fails the test
			}
			switch b.answer(&req) {
			case tooLarge:
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				return true
			case unavailable:
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			}
			return false
		})
		return []exporter.Option{exporter.WithEndpoint(rcv.Endpoint())}
	}
}

// tally counts the spans the backends accepted, by span id.
type tally struct {
	mu   sync.Mutex
	seen map[string]int
	all  int
}

func (t *tally) add(req *coltracepb.ExportTraceServiceRequest) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen == nil {
		t.seen = map[string]int{}
	}
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				t.seen[string(s.GetSpanId())]++
				t.all++
			}
		}
	}
}

// counts returns the spans accepted, the distinct ones among them, and
// how many deliveries were of a span accepted before.
func (t *tally) counts() (all, distinct, duplicates int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.all, len(t.seen), t.all - len(t.seen)
}

// booksWatch checks, whenever asked, the books of the exporter it
// watches: the identity, no state below zero, and no more spans counted
// spooled than the spool holds (while nothing new is exported, nothing
// waits in the hand-off to the disk).
type booksWatch struct {
	exp        atomic.Pointer[exporter.Exporter]
	mu         sync.Mutex
	checks     int
	broken     int
	first      string
	minSpooled int64
}

func (w *booksWatch) check() exporter.Stats {
	e := w.exp.Load()
	if e == nil {
		return exporter.Stats{}
	}
	s := e.Stats()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.checks++
	w.minSpooled = min(w.minSpooled, s.Spooled)
	if s.Accepted != s.Exported+s.Dropped.Total()+s.Queued+s.Spooled+s.InFlight ||
		s.Spooled < 0 || s.InFlight < 0 || s.Queued < 0 || s.Spooled > s.SpoolSpans {
		w.broken++
		if w.first == "" {
			w.first = fmt.Sprintf("Accepted %d Exported %d Dropped %d Queued %d Spooled %d InFlight %d SpoolSpans %d",
				s.Accepted, s.Exported, s.Dropped.Total(), s.Queued, s.Spooled, s.InFlight, s.SpoolSpans)
		}
	}
	return s
}

// verify fails the test if a check found the books wrong.
func (w *booksWatch) verify(t *testing.T, what string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("%s: %d checks of the books, %d wrong, lowest Spooled %d", what, w.checks, w.broken, w.minSpooled)
	if w.broken > 0 {
		t.Errorf("%s: the books were wrong at %d of %d checks, first: %s", what, w.broken, w.checks, w.first)
	}
}

// spoolOneRecord leaves n spans with distinct ids on disk in dir, in one
// record, as an exporter whose backend never answered does at Shutdown.
func spoolOneRecord(t *testing.T, dir string, n int) {
	t.Helper()
	exp := exporter.New(exporter.WithEndpoint(otlptest.RefusedAddr(t)), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
		exporter.WithSpool(dir, 64<<20), exporter.WithRetry(quickRetry))
	_ = exp.ExportSpans(context.Background(), otlptest.Spans(n))
	if err := shutdownWithin(t, exp, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if s := exp.Stats(); s.Spooled != int64(n) || s.SpoolSpans != int64(n) || s.SpoolRecords != 1 {
		t.Fatalf("want the %d spans on disk in one record: %+v", n, s)
	}
}

// A record read back from the spool and refused as too large is split;
// when one half is delivered and the other cannot be (the backend down
// afterwards, then Shutdown), only the undelivered half stays on disk: the
// next start sends it alone, and every span reaches the backend once.
func TestSpoolSplitRecordKeepsOnlyTheUndeliveredHalf(t *testing.T) {
	for _, protocol := range []string{"http", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			const spans, limit = 200, 100
			dir := t.TempDir()
			spoolOneRecord(t, dir, spans)
			got := &tally{}

			// Too large whole; the first half accepted; then down.
			watchB := &booksWatch{}
			down := &splitBackend{limit: limit, books: watchB, tally: got, script: []verdict{accept, unavailable}}
			opts := append(down.start(t, protocol), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
				exporter.WithSpool(dir, 64<<20), exporter.WithRetry(exporter.RetryConfig{})) // no retries: each refusal ends an attempt
			b := exporter.New(opts...)
			watchB.exp.Store(b)
			waitFor(t, "the first half delivered", func() bool { return watchB.check().Exported >= limit })
			if err := shutdownWithin(t, b, bound); err != nil {
				t.Fatalf("Shutdown = %v, want nil: what was not sent stays on disk", err)
			}
			sb := watchB.check()
			checkBooks(t, sb)
			watchB.verify(t, "with the backend down")
			t.Logf("with the backend down: Exported %d Spooled %d SpoolSpans %d SpoolRecords %d Dropped %d",
				sb.Exported, sb.Spooled, sb.SpoolSpans, sb.SpoolRecords, sb.Dropped.Total())
			if sb.Spooled != sb.SpoolSpans || sb.Exported != limit || sb.Spooled != spans-limit || sb.Dropped.Total() != 0 {
				t.Errorf("want %d spans exported and the other %d on disk, counted as many in Spooled and SpoolSpans: %+v",
					limit, spans-limit, sb)
			}

			// The next start, with a healthy backend.
			watchC := &booksWatch{}
			up := &splitBackend{limit: spans, books: watchC, tally: got, script: []verdict{accept}}
			opts = append(up.start(t, protocol), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
				exporter.WithSpool(dir, 64<<20))
			c := exporter.New(opts...)
			watchC.exp.Store(c)
			sc := watchC.check()
			t.Logf("next start: Recovered %d Resent %d", sc.Recovered, sc.Resent)
			waitFor(t, "the backlog delivered", func() bool { s := watchC.check(); return s.Spooled == 0 && s.InFlight == 0 })
			if err := shutdownWithin(t, c, bound); err != nil {
				t.Fatal(err)
			}
			sc = watchC.check()
			checkBooks(t, sc)
			watchC.verify(t, "next start")
			all, distinct, dups := got.counts()
			t.Logf("next start: Exported %d Spooled %d SpoolSpans %d; the backends accepted %d spans, %d distinct, %d duplicates; exported in all %d",
				sc.Exported, sc.Spooled, sc.SpoolSpans, all, distinct, dups, sb.Exported+sc.Exported)
			if distinct != spans || dups != 0 || sb.Exported+sc.Exported != spans {
				t.Errorf("want each of the %d spans accepted once and exported once: accepted %d, %d distinct, %d duplicates, exported %d+%d",
					spans, all, distinct, dups, sb.Exported, sc.Exported)
			}
			if sc.Recovered != spans-limit || sc.Spooled != 0 || sc.SpoolSpans != 0 || sc.Dropped.Total() != 0 {
				t.Errorf("want the %d spans left on disk recovered and delivered: %+v", spans-limit, sc)
			}
			// The kept half was refused with an answer over HTTP (503);
			// over gRPC, UNAVAILABLE may be a connection lost with the
			// request on it: it may have arrived.
			wantResent := int64(0)
			if protocol == "grpc" {
				wantResent = spans - limit
			}
			if sc.Resent != wantResent {
				t.Errorf("Resent %d, want %d", sc.Resent, wantResent)
			}
		})
	}
}

// The same within one process: the backend refuses the undelivered half
// once, then takes everything; the half put back is sent alone, and the
// delivered half is not sent again.
func TestSpoolSplitRecordIsNotSentWholeAgain(t *testing.T) {
	for _, protocol := range []string{"http", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			const spans, limit = 200, 100
			dir := t.TempDir()
			spoolOneRecord(t, dir, spans)
			got := &tally{}
			watch := &booksWatch{}
			backend := &splitBackend{limit: limit, books: watch, tally: got, script: []verdict{accept, unavailable, accept}}
			opts := append(backend.start(t, protocol), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
				exporter.WithSpool(dir, 64<<20), exporter.WithRetry(exporter.RetryConfig{}))
			exp := exporter.New(opts...)
			watch.exp.Store(exp)
			waitFor(t, "the backlog delivered", func() bool {
				s := watch.check()
				return s.SpoolRecords == 0 && s.InFlight == 0
			})
			if err := shutdownWithin(t, exp, bound); err != nil {
				t.Fatal(err)
			}
			s := watch.check()
			checkBooks(t, s)
			watch.verify(t, "one process")
			all, distinct, dups := got.counts()
			t.Logf("Accepted %d Exported %d Spooled %d SpoolSpans %d; the backend accepted %d spans, %d distinct, %d duplicates",
				s.Accepted, s.Exported, s.Spooled, s.SpoolSpans, all, distinct, dups)
			if distinct != spans || dups != 0 || s.Exported != spans || s.Accepted != spans {
				t.Errorf("want each of the %d spans accepted and exported once: accepted %d, %d distinct, %d duplicates; %+v",
					spans, all, distinct, dups, s)
			}
		})
	}
}
