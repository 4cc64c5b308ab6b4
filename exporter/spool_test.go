package exporter_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tracekeeper/tracekeeper/exporter"
	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

// waitFor polls cond until it holds, for what ForceFlush does not cover
// (the spool's backlog); the bound only catches a stuck exporter.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not the case after %v", what, bound)
		}
		time.Sleep(time.Millisecond)
	}
}

var quickRetry = exporter.RetryConfig{Enabled: true, InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond}

func TestSpoolRidesOutAnOutage(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	rcv := otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	exp := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
		exporter.WithMemoryBudget(2<<20), exporter.WithMaxRequestSize(256<<10), exporter.WithSpool(t.TempDir(), 64<<20),
		exporter.WithRetry(quickRetry))
	const batches = 400
	for range batches {
		_ = exp.ExportSpans(context.Background(), otlptest.Spans(200))
		// As a BatchSpanProcessor would, at a pace the disk keeps up
		// with: nothing waits in the spool's hand-off.
		waitFor(t, "the hand-off written", func() bool { s := exp.Stats(); return s.Spooled <= s.SpoolSpans })
	}
	waitFor(t, "spans on disk", func() bool { return exp.Stats().SpoolRecords > 0 })
	s := exp.Stats()
	checkBooks(t, s)
	if s.Dropped.Total() != 0 {
		t.Fatalf("spans dropped while the spool had room: %+v", s.Dropped)
	}
	down.Store(false)
	waitFor(t, "the backlog delivered", func() bool { return exp.Stats().Exported == batches*200 })
	if err := shutdownWithin(t, exp, bound); err != nil {
		t.Fatal(err)
	}
	s = exp.Stats()
	checkBooks(t, s)
	if rcv.Spans() != batches*200 || s.Spooled != 0 || s.SpoolBytes != 0 {
		t.Fatalf("received %d; %+v", rcv.Spans(), s)
	}
}

func TestSpoolKeepsWhatShutdownCouldNotSend(t *testing.T) {
	dir := t.TempDir()
	exp := exporter.New(exporter.WithEndpoint(otlptest.RefusedAddr(t)), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
		exporter.WithSpool(dir, 64<<20), exporter.WithRetry(quickRetry))
	for range 10 {
		_ = exp.ExportSpans(context.Background(), otlptest.Spans(100))
	}
	if err := shutdownWithin(t, exp, 100*time.Millisecond); err != nil {
		t.Fatalf("Shutdown = %v, want nil: nothing was dropped", err)
	}
	s := exp.Stats()
	checkBooks(t, s)
	if s.Spooled != 1000 || s.Dropped.Total() != 0 {
		t.Fatalf("want the 1000 spans kept on disk: %+v", s)
	}

	rcv := otlptest.NewHTTP(t, nil)
	next := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
		exporter.WithSpool(dir, 64<<20))
	waitFor(t, "the recovered spans delivered", func() bool { return next.Stats().Exported == 1000 })
	if err := shutdownWithin(t, next, bound); err != nil {
		t.Fatal(err)
	}
	s = next.Stats()
	checkBooks(t, s)
	if s.Recovered != 1000 || rcv.Spans() != 1000 || s.Spooled != 0 {
		t.Fatalf("received %d; %+v", rcv.Spans(), s)
	}
}

func TestSpoolIsOneProcessPerDirectory(t *testing.T) {
	dir := t.TempDir()
	rcv := otlptest.NewHTTP(t, nil)
	a := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(), exporter.WithSpool(dir, 1<<20))
	defer shutdownWithin(t, a, bound)
	core, logs := observer.New(zapcore.ErrorLevel)
	b := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(), exporter.WithSpool(dir, 1<<20),
		exporter.WithLogger(zap.New(core)))
	_ = b.ExportSpans(context.Background(), otlptest.Spans(5))
	if err := shutdownWithin(t, b, bound); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range logs.FilterMessageSnippet("disk spool unavailable").All() {
		found = found || strings.Contains(fmt.Sprint(e.ContextMap()["error"]), "in use by another process")
	}
	if !found {
		t.Fatalf("the second exporter did not say the spool is taken: %v", logs.All())
	}
	if rcv.Spans() != 5 {
		t.Fatalf("the second exporter must still deliver from memory: %d", rcv.Spans())
	}
}

// The child half of TestSpoolSurvivesKill: it exports to a backend that
// never answers, so that memory fills with requests in flight and the rest
// goes to disk; once everything handed to the spool is on disk, it says how
// many spans are there and waits to be killed.
func TestSpoolKillChild(t *testing.T) {
	dir := os.Getenv("TRACEKEEPER_TEST_SPOOL_CHILD")
	if dir == "" {
		t.Skip("run by TestSpoolSurvivesKill")
	}
	rcv := otlptest.NewHTTP(t, nil)
	rcv = otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, r *http.Request) bool {
		rcv.Hold(w, r)
		return true
	})
	exp := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(),
		exporter.WithLogger(zap.NewNop()), exporter.WithMemoryBudget(2<<20), exporter.WithSpool(dir, 64<<20),
		exporter.WithTimeout(time.Hour))
	for range 200 {
		_ = exp.ExportSpans(context.Background(), otlptest.Spans(100))
	}
	for {
		s := exp.Stats()
		// Everything was handed over, nothing waits in the spool's
		// hand-off, and no record was taken back from disk: the spooled
		// spans are all on disk. What memory holds is lost to the kill.
		if s.Spooled > 0 && s.Spooled == s.SpoolSpans && s.Spooled+s.Queued+s.InFlight+s.Dropped.Total() == 20000 {
			fmt.Printf("spooled %d\n", s.SpoolSpans)
			break
		}
		time.Sleep(time.Millisecond)
	}
	select {} // killed here
}

func TestSpoolSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolKillChild$", "-test.v", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), "TRACEKEEPER_TEST_SPOOL_CHILD="+dir, "TRACEKEEPER_TEST_DEAD="+otlptest.RefusedAddr(t))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	onDisk := -1
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if n, ok := strings.CutPrefix(lines.Text(), "spooled "); ok {
			onDisk, _ = strconv.Atoi(n)
			break
		}
	}
	_ = cmd.Process.Kill() // SIGKILL: no Shutdown, no flush
	_ = cmd.Wait()
	if onDisk <= 0 {
		t.Fatalf("the child reported %d spans on disk", onDisk)
	}

	rcv := otlptest.NewHTTP(t, nil)
	exp := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
		exporter.WithSpool(dir, 64<<20))
	waitFor(t, "the recovered spans delivered", func() bool { s := exp.Stats(); return s.Spooled == 0 && s.InFlight == 0 })
	if err := shutdownWithin(t, exp, bound); err != nil {
		t.Fatal(err)
	}
	s := exp.Stats()
	checkBooks(t, s)
	if s.Recovered != int64(onDisk) || s.Exported != int64(onDisk) || rcv.Spans() != onDisk {
		t.Fatalf("%d spans were on disk; received %d; %+v", onDisk, rcv.Spans(), s)
	}
	t.Logf("recovered %d spans after SIGKILL, %d of them possibly sent before (resent)", s.Recovered, s.Resent)
}

func TestSpoolShutdownWhileExporting(t *testing.T) {
	exp := exporter.New(exporter.WithEndpoint(otlptest.RefusedAddr(t)), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
		exporter.WithMemoryBudget(2<<20), exporter.WithSpool(t.TempDir(), 64<<20), exporter.WithRetry(quickRetry))
	stop := make(chan struct{})
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = exp.ExportSpans(context.Background(), otlptest.Spans(100))
			}
		}()
	}
	waitFor(t, "spans on disk", func() bool { return exp.Stats().SpoolRecords > 0 })
	_ = shutdownWithin(t, exp, 50*time.Millisecond)
	close(stop)
	for range 4 {
		<-done
	}
	checkBooks(t, exp.Stats())
}

// With the backend down, Shutdown without a deadline ends once the
// backlog's records it tried could not be sent, and leaves the backlog on
// disk; it does not send the same records again and again.
func TestSpoolShutdownWithoutDeadlineLeavesTheBacklog(t *testing.T) {
	dir := t.TempDir()
	const records, perRecord = 64, 50 // more records than requests in flight
	first := exporter.New(exporter.WithEndpoint(otlptest.RefusedAddr(t)), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
		exporter.WithSpool(dir, 64<<20), exporter.WithRetry(quickRetry), exporter.WithMaxRequestSize(perRecord*500))
	for range records {
		_ = first.ExportSpans(context.Background(), otlptest.Spans(perRecord))
	}
	if err := shutdownWithin(t, first, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if s := first.Stats(); s.Spooled != records*perRecord || s.SpoolRecords < records/2 {
		t.Fatalf("want every span on disk, in more records than requests in flight: %+v", s)
	}

	down := otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	budget := quickRetry
	budget.MaxElapsedTime = 50 * time.Millisecond
	next := exporter.New(exporter.WithEndpoint(down.Endpoint()), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
		exporter.WithSpool(dir, 64<<20), exporter.WithRetry(budget), exporter.WithMemoryBudget(4<<20)) // a few requests at once
	done := make(chan error, 1)
	go func() { done <- next.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown = %v, want nil: nothing was dropped", err)
		}
	case <-time.After(bound):
		t.Fatalf("Shutdown(context.Background()) still sending the backlog after %v: %+v", bound, next.Stats())
	}
	s := next.Stats()
	checkBooks(t, s)
	if s.Recovered != records*perRecord || s.Spooled != records*perRecord || s.Dropped.Total() != 0 {
		t.Fatalf("want the whole backlog kept on disk: %+v", s)
	}
}

// Spans that failed in memory and find the spool full are dropped with
// reason spool_full, and the log says the disk could not keep them.
func TestSpoolFullOfFailedSpansCountsSpoolFull(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	budget := quickRetry
	budget.MaxElapsedTime = 30 * time.Millisecond
	exp := exporter.New(exporter.WithEndpoint(otlptest.RefusedAddr(t)), exporter.WithInsecure(), exporter.WithLogger(zap.New(core)),
		exporter.WithSpool(t.TempDir(), 16<<10), exporter.WithRetry(budget))
	for range 40 {
		_ = exp.ExportSpans(context.Background(), otlptest.Spans(100))
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	_ = exp.ForceFlush(ctx)
	_ = shutdownWithin(t, exp, 100*time.Millisecond)
	s := exp.Stats()
	checkBooks(t, s)
	if s.Dropped.SpoolFull == 0 || s.Dropped.RetriesExhausted != 0 {
		t.Fatalf("want the spans the full spool could not keep counted spool_full, none retries_exhausted: %+v", s.Dropped)
	}
	var said bool
	for _, e := range logs.All() {
		m := e.ContextMap()
		if c, ok := m["spool_full_cause"].(string); ok && strings.Contains(c, "could not keep them on disk") {
			said = true
		}
	}
	if !said {
		t.Fatalf("no drop report names the full spool: %v", logs.All())
	}
}

// A segment the spool cannot open is skipped, counted and logged; the
// rest of the backlog is delivered.
func TestSpoolSkipsASegmentItCannotOpen(t *testing.T) {
	dir := t.TempDir()
	first := exporter.New(exporter.WithEndpoint(otlptest.RefusedAddr(t)), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
		exporter.WithSpool(dir, 64<<20), exporter.WithRetry(quickRetry))
	for range 10 {
		_ = first.ExportSpans(context.Background(), otlptest.Spans(100))
	}
	if err := shutdownWithin(t, first, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	const odd = "00000000000000000099.log"
	if err := os.Mkdir(filepath.Join(dir, odd), 0o700); err != nil {
		t.Fatal(err)
	}

	core, logs := observer.New(zapcore.WarnLevel)
	rcv := otlptest.NewHTTP(t, nil)
	next := exporter.New(exporter.WithEndpoint(rcv.Endpoint()), exporter.WithInsecure(), exporter.WithLogger(zap.New(core)),
		exporter.WithSpool(dir, 64<<20))
	if s := next.Stats(); s.Recovered != 1000 || s.SpoolCorrupt != 1 {
		t.Fatalf("want the 1000 spans recovered and the directory named like a segment counted corrupt: %+v", s)
	}
	waitFor(t, "the recovered spans delivered", func() bool { return next.Stats().Exported == 1000 })
	if err := shutdownWithin(t, next, bound); err != nil {
		t.Fatal(err)
	}
	checkBooks(t, next.Stats())
	said := false
	for _, e := range logs.FilterMessageSnippet("segment skipped").All() {
		said = said || strings.Contains(fmt.Sprint(e.ContextMap()["last"]), odd)
	}
	if !said {
		t.Fatalf("no warning names the segment skipped: %v", logs.All())
	}
}

// Resent counts only the spans of records that may have reached the
// backend: a record taken from the backlog and refused (an answer, or no
// connection at all) is not one; one abandoned with no answer is.
func TestSpoolResentCountsOnlyWhatMayHaveArrived(t *testing.T) {
	dir := t.TempDir()
	const records, perRecord = 16, 50
	// Requests give up after their retries, refused, well within
	// Shutdown's deadline: none is abandoned mid-attempt, which could
	// count as possibly received.
	budget := quickRetry
	budget.MaxElapsedTime = 30 * time.Millisecond
	first := exporter.New(exporter.WithEndpoint(otlptest.RefusedAddr(t)), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
		exporter.WithSpool(dir, 64<<20), exporter.WithRetry(budget), exporter.WithMaxRequestSize(perRecord*500))
	for range records {
		_ = first.ExportSpans(context.Background(), otlptest.Spans(perRecord))
	}
	if err := shutdownWithin(t, first, bound); err != nil {
		t.Fatal(err)
	}

	// Two starts that take records from the backlog and have them
	// refused, with a 503 and with no connection.
	down := otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	for _, endpoint := range []string{down.Endpoint(), otlptest.RefusedAddr(t)} {
		next := exporter.New(exporter.WithEndpoint(endpoint), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
			exporter.WithSpool(dir, 64<<20), exporter.WithRetry(budget))
		if err := shutdownWithin(t, next, bound); err != nil {
			t.Fatal(err)
		}
		s := next.Stats()
		if s.Recovered != records*perRecord || s.Resent != 0 || s.Requests == 0 {
			t.Fatalf("%s: want every span recovered, none resent, records tried: %+v", endpoint, s)
		}
	}
	if down.Requests() == 0 {
		t.Fatal("the backlog was never sent to the backend answering 503")
	}

	// A start whose requests the backend holds until the deadline
	// abandons them: those may have arrived.
	var hold *otlptest.HTTP
	hold = otlptest.NewHTTP(t, func(_ int, _ []byte, w http.ResponseWriter, r *http.Request) bool {
		hold.Hold(w, r)
		return true
	})
	held := exporter.New(exporter.WithEndpoint(hold.Endpoint()), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
		exporter.WithSpool(dir, 64<<20), exporter.WithTimeout(time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := hold.WaitRequests(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := shutdownWithin(t, held, 50*time.Millisecond); err != nil {
		t.Fatalf("Shutdown = %v, want nil: the backlog stays on disk", err)
	}
	if s := held.Stats(); s.Resent != 0 {
		t.Fatalf("resent %d: %+v", s.Resent, s)
	}
	last := exporter.New(exporter.WithEndpoint(otlptest.RefusedAddr(t)), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
		exporter.WithSpool(dir, 64<<20), exporter.WithRetry(budget))
	s := last.Stats()
	if err := shutdownWithin(t, last, bound); err != nil {
		t.Fatal(err)
	}
	if s.Recovered != records*perRecord || s.Resent < int64(hold.Requests()*perRecord) || s.Resent > s.Recovered {
		t.Fatalf("%d requests held without an answer; want at least their spans resent: %+v", hold.Requests(), s)
	}
}

// spoolDuringOutage fills exp's spool from a backend that never takes
// anything, and returns the spans spooled once nothing waits for the
// disk.
func spoolDuringOutage(t *testing.T, exp *exporter.Exporter) int64 {
	t.Helper()
	for range 40 {
		_ = exp.ExportSpans(context.Background(), otlptest.Spans(200))
		waitFor(t, "the hand-off written", func() bool { s := exp.Stats(); return s.Spooled <= s.SpoolSpans })
	}
	s := exp.Stats()
	if s.Spooled == 0 || s.SpoolRecords == 0 {
		t.Fatalf("nothing spooled: %+v", s)
	}
	return s.Spooled
}

// A spool directory removed while it holds spans: Shutdown finds it gone,
// counts them spool_error and says so, instead of reporting them kept on
// disk for the next start.
func TestSpoolVanishedDirectoryFoundAtShutdown(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	exp := exporter.New(exporter.WithEndpoint(otlptest.RefusedAddr(t)), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
		exporter.WithMemoryBudget(2<<20), exporter.WithSpool(dir, 64<<20), exporter.WithRetry(quickRetry),
		exporter.WithSpoolSync(time.Hour)) // no sync finds it first
	onDisk := spoolDuringOutage(t, exp)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	err := shutdownWithin(t, exp, 100*time.Millisecond)
	s := exp.Stats()
	checkBooks(t, s)
	if s.Spooled != 0 || s.Dropped.SpoolError < onDisk || s.Exported != 0 {
		t.Fatalf("%d spans were on disk when it vanished; want none kept, all of them spool_error: %+v", onDisk, s)
	}
	if err == nil || !strings.Contains(err.Error(), "could not be kept on disk") {
		t.Fatalf("Shutdown = %v, want the spans lost with the spool counted", err)
	}
	next := exporter.New(exporter.WithEndpoint(otlptest.RefusedAddr(t)), exporter.WithInsecure(), exporter.WithLogger(zap.NewNop()),
		exporter.WithSpool(dir, 64<<20))
	defer shutdownWithin(t, next, bound)
	if r := next.Stats().Recovered; r != 0 {
		t.Fatalf("recovered %d", r)
	}
}

// A spool directory removed while it holds spans is found at the next
// sync: its spans are counted spool_error, the spool turns off and the
// exporter goes on in memory, and says so.
func TestSpoolVanishedDirectoryFoundAtSync(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	dir := filepath.Join(t.TempDir(), "spool")
	exp := exporter.New(exporter.WithEndpoint(otlptest.RefusedAddr(t)), exporter.WithInsecure(), exporter.WithLogger(zap.New(core)),
		exporter.WithMemoryBudget(2<<20), exporter.WithSpool(dir, 64<<20), exporter.WithRetry(quickRetry),
		exporter.WithSpoolSync(0), exporter.WithLogInterval(time.Millisecond))
	onDisk := spoolDuringOutage(t, exp)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	// The next write syncs, and finds the directory gone.
	_ = exp.ExportSpans(context.Background(), otlptest.Spans(200))
	waitFor(t, "the loss counted", func() bool { return exp.Stats().Dropped.SpoolError >= onDisk })
	s := exp.Stats()
	checkBooks(t, s)
	if s.Spooled != 0 || s.SpoolRecords != 0 || s.SpoolBytes != 0 {
		t.Fatalf("spans still counted on a vanished disk: %+v", s)
	}
	// Memory only from now on: nothing more goes to the spool.
	for range 5 {
		_ = exp.ExportSpans(context.Background(), otlptest.Spans(200))
	}
	if s := exp.Stats(); s.Spooled != 0 {
		t.Fatalf("spooled %d after the spool failed", s.Spooled)
	}
	waitFor(t, "a warning that the spool vanished", func() bool {
		for _, e := range logs.FilterMessageSnippet("disk spool failed").All() {
			if strings.Contains(fmt.Sprint(e.ContextMap()["last"]), "vanished") {
				return true
			}
		}
		return false
	})
	_ = shutdownWithin(t, exp, 100*time.Millisecond)
	s = exp.Stats()
	checkBooks(t, s)
	if s.Spooled != 0 || s.Dropped.SpoolError < onDisk {
		t.Fatalf("%d spans were on disk when it vanished: %+v", onDisk, s)
	}
}
