package spool

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, dir string, max int64) (*Spool, Recovery) {
	t.Helper()
	s, rec, err := Open(Config{Dir: dir, MaxBytes: max, SegmentBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	return s, rec
}

func payload(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 40+i) }

// drain takes every record, checking the payloads against want (by the
// byte they repeat), and finishes them.
func drain(t *testing.T, s *Spool, newest bool) []int {
	t.Helper()
	var got []int
	for {
		rec, p, ok, err := s.Next(newest)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return got
		}
		i := int(p[0])
		if !bytes.Equal(p, payload(i)) || rec.Spans != i+1 {
			t.Fatalf("record %d: spans %d, payload %q", i, rec.Spans, p)
		}
		got = append(got, i)
		s.Finish(rec)
	}
}

func TestWriteReadBackInOrder(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, 1<<20)
	for i := range 20 {
		if err := s.Append(payload(i), i+1); err != nil {
			t.Fatal(err)
		}
	}
	if got := drain(t, s, false); fmt.Sprint(got) != fmt.Sprint(seq(0, 20)) {
		t.Fatalf("oldest first: %v", got)
	}
	for i := range 5 {
		_ = s.Append(payload(i), i+1)
	}
	if got := drain(t, s, true); fmt.Sprint(got) != "[4 3 2 1 0]" {
		t.Fatalf("newest first: %v", got)
	}
	if r, sp, disk := s.Usage(); r != 0 || sp != 0 || disk != 0 {
		t.Fatalf("usage %d %d %d after finishing everything", r, sp, disk)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if left := segments(t, dir); len(left) != 0 {
		t.Fatalf("finished segments left on disk: %v", left)
	}
}

func seq(a, b int) []int {
	var out []int
	for i := a; i < b; i++ {
		out = append(out, i)
	}
	return out
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	return m
}

// damage flips the bits of mask in the byte at off of dir's only segment.
func damage(t *testing.T, dir string, off int, mask byte) {
	t.Helper()
	name := segments(t, dir)[0]
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= mask
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// recordAt is the offset of record i in a segment of payload(0), payload(1)…
func recordAt(i int) int {
	off := 0
	for j := range i {
		off += headerSize + len(payload(j))
	}
	return off
}

func TestRestartSendsOnlyWhatWasNotFinished(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, 1<<20)
	for i := range 10 {
		_ = s.Append(payload(i), i+1)
	}
	// Finish 0–3, take 4 and 5 without finishing (sent, no answer yet).
	for range 4 {
		rec, _, _, _ := s.Next(false)
		s.Finish(rec)
	}
	_, _, _, _ = s.Next(false)
	_, _, _, _ = s.Next(false)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, rec := open(t, dir, 1<<20)
	defer s.Close()
	if rec.Records != 6 || rec.Spans != 5+6+7+8+9+10 || rec.Resent != 5+6 || rec.Corrupt != 0 {
		t.Fatalf("recovery %+v", rec)
	}
	if got := drain(t, s, false); fmt.Sprint(got) != "[4 5 6 7 8 9]" {
		t.Fatalf("got %v", got)
	}
}

func TestTornRecordsAtEveryOffsetAreSkipped(t *testing.T) {
	// One segment of three records; the last is cut at every byte.
	base := t.TempDir()
	s, _ := open(t, base, 1<<20)
	for i := range 3 {
		_ = s.Append(payload(i), i+1)
	}
	_ = s.Close()
	name := segments(t, base)[0]
	whole, _ := os.ReadFile(name)
	lastStart := int64(len(whole)) - headerSize - int64(len(payload(2)))
	for cut := lastStart; cut < int64(len(whole)); cut++ {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(name)), whole[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		s, rec := open(t, dir, 1<<20)
		torn := cut > lastStart
		if rec.Records != 2 || (rec.Corrupt == 1) != torn || rec.CorruptBytes != cut-lastStart {
			t.Fatalf("cut at %d: recovery %+v", cut, rec)
		}
		if got := drain(t, s, false); fmt.Sprint(got) != "[0 1]" {
			t.Fatalf("cut at %d: got %v", cut, got)
		}
		// The spool goes on appending after a torn tail.
		if err := s.Append(payload(7), 8); err != nil {
			t.Fatal(err)
		}
		if got := drain(t, s, false); fmt.Sprint(got) != "[7]" {
			t.Fatalf("cut at %d: after the tear: %v", cut, got)
		}
		_ = s.Close()
	}
}

func TestCorruptChecksumIsSkipped(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, 1<<20)
	for i := range 3 {
		_ = s.Append(payload(i), i+1)
	}
	_ = s.Close()
	damage(t, dir, recordAt(1)+headerSize+3, 0xff) // a payload byte of record 1
	s, rec := open(t, dir, 1<<20)
	defer s.Close()
	// Only the damaged record is lost: the one after it is sound and
	// found where its length says.
	if rec.Records != 2 || rec.Corrupt != 1 || rec.CorruptBytes != int64(headerSize+len(payload(1))) {
		t.Fatalf("recovery %+v", rec)
	}
	if got := drain(t, s, false); fmt.Sprint(got) != "[0 2]" {
		t.Fatalf("got %v", got)
	}
}

func TestCorruptRecordKeepsTheJournalTrue(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, 1<<20)
	for i := range 4 {
		_ = s.Append(payload(i), i+1)
	}
	// Record 2 is delivered before the crash; record 1 is damaged on
	// disk afterwards.
	var taken []Record
	for range 3 {
		r, _, ok, err := s.Next(false)
		if !ok || err != nil {
			t.Fatal(ok, err)
		}
		taken = append(taken, r)
	}
	s.Return(taken[0], true)
	s.Return(taken[1], true)
	s.Finish(taken[2])
	_ = s.Close()
	damage(t, dir, recordAt(1)+headerSize, 0xff)
	s, rec := open(t, dir, 1<<20)
	defer s.Close()
	if rec.Records != 2 || rec.Corrupt != 1 {
		t.Fatalf("recovery %+v", rec)
	}
	// Record 2 was finished: the skipped record kept its index, so the
	// journal still says so, and it is not sent again.
	if got := drain(t, s, false); fmt.Sprint(got) != "[0 3]" {
		t.Fatalf("got %v", got)
	}
}

func TestDamagedLengthSkipsTheRestOfTheSegment(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, 1<<20)
	for i := range 3 {
		_ = s.Append(payload(i), i+1)
	}
	_ = s.Close()
	damage(t, dir, recordAt(1)+4, 0x01) // the length of record 1
	s, rec := open(t, dir, 1<<20)
	defer s.Close()
	if rec.Records != 1 || rec.Corrupt != 1 {
		t.Fatalf("recovery %+v", rec)
	}
	if got := drain(t, s, false); fmt.Sprint(got) != "[0]" {
		t.Fatalf("got %v", got)
	}
}

func TestCorruptionAfterOpenIsCaughtOnReading(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, 1<<20)
	defer s.Close()
	_ = s.Append(payload(0), 1)
	name := segments(t, dir)[0]
	data, _ := os.ReadFile(name)
	data[len(data)-1] ^= 0xff
	_ = os.WriteFile(name, data, 0o600)
	if _, _, ok, err := s.Next(false); !ok || err == nil {
		t.Fatalf("ok %v err %v: want the corruption reported", ok, err)
	}
	if r, _, _ := s.Usage(); r != 0 {
		t.Fatal("an unreadable record must be finished, not retried forever")
	}
}

func TestDiskBudget(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, 300)
	defer s.Close()
	n := 0
	for ; ; n++ {
		if err := s.Append(payload(0), 1); errors.Is(err, ErrFull) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if n != 300/(headerSize+40) {
		t.Fatalf("%d records fit in 300 bytes", n)
	}
	// Finishing records frees room once their segment is deleted.
	drain(t, s, false)
	if err := s.Append(payload(0), 1); err != nil {
		t.Fatalf("after draining: %v", err)
	}
}

func TestOneProcessPerDirectory(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, 1<<20)
	if _, _, err := Open(Config{Dir: dir, MaxBytes: 1 << 20}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	_ = s.Close()
	s, _ = open(t, dir, 1<<20)
	_ = s.Close()
}

func TestPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s, _ := open(t, dir, 1<<20)
	defer s.Close()
	_ = s.Append(payload(0), 1)
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v", fi.Mode().Perm())
	}
	for _, p := range segments(t, dir) {
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", p, fi.Mode().Perm())
		}
	}
}

// faultyFS fails writes with ENOSPC once armed.
type faultyFS struct {
	FS
	mu   sync.Mutex
	full bool
}

func (f *faultyFS) OpenFile(n string, flag int, perm os.FileMode) (File, error) {
	file, err := f.FS.OpenFile(n, flag, perm)
	if err != nil {
		return nil, err
	}
	return faultyFile{file, f}, nil
}

func (f *faultyFS) setFull(v bool) { f.mu.Lock(); f.full = v; f.mu.Unlock() }

type faultyFile struct {
	File
	fs *faultyFS
}

func (f faultyFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	full := f.fs.full
	f.fs.mu.Unlock()
	if full {
		n := len(p) / 2 // a torn write, as a full disk leaves
		_, _ = f.File.Write(p[:n])
		return n, &os.PathError{Op: "write", Path: "segment", Err: syscall.ENOSPC}
	}
	return f.File.Write(p)
}

func TestDiskFullIsReportedAndLeavesNoTornRecord(t *testing.T) {
	dir := t.TempDir()
	fs := &faultyFS{FS: OS}
	s, _, err := Open(Config{Dir: dir, MaxBytes: 1 << 20, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Append(payload(0), 1)
	fs.setFull(true)
	if err := s.Append(payload(1), 2); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("got %v, want ENOSPC", err)
	}
	fs.setFull(false)
	if err := s.Append(payload(2), 3); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s, rec := open(t, dir, 1<<20)
	defer s.Close()
	if rec.Corrupt != 0 || rec.Records != 2 {
		t.Fatalf("recovery %+v", rec)
	}
	if got := drain(t, s, false); fmt.Sprint(got) != "[0 2]" {
		t.Fatalf("got %v", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	s, _ := open(t, t.TempDir(), 1<<30)
	defer s.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := 0
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if w%2 == 0 {
					_ = s.Append(payload(i%50), i%50+1)
					continue
				}
				if rec, _, ok, err := s.Next(i%3 == 0); ok && err == nil {
					mu.Lock()
					seen++
					mu.Unlock()
					s.Finish(rec)
				}
			}
		}()
	}
	wg.Wait()
	left := len(drain(t, s, false))
	if seen+left != 400 {
		t.Fatalf("%d taken + %d left != 400 appended", seen, left)
	}
}

func TestBacklogFollowsTakeReturnFinish(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, 1<<20)
	defer s.Close()
	if s.Backlog() {
		t.Fatal("an empty spool has a backlog")
	}
	_ = s.Append(payload(0), 1)
	_ = s.Append(payload(1), 2)
	a, _, _, _ := s.Next(false)
	if !s.Backlog() {
		t.Fatal("one record not taken, but no backlog")
	}
	b, _, _, _ := s.Next(false)
	if s.Backlog() {
		t.Fatal("every record taken, yet a backlog")
	}
	s.Return(a, false)
	if !s.Backlog() {
		t.Fatal("a returned record is not a backlog")
	}
	s.Finish(b)
	if _, _, ok, _ := s.Next(false); !ok || s.Backlog() {
		t.Fatalf("ok %v, backlog %v after taking the returned record", ok, s.Backlog())
	}
}

// syncFS records which files were synced.
type syncFS struct {
	FS
	mu     sync.Mutex
	synced []string
}

func (f *syncFS) OpenFile(n string, flag int, perm os.FileMode) (File, error) {
	file, err := f.FS.OpenFile(n, flag, perm)
	if err != nil {
		return nil, err
	}
	return syncFile{file, n, f}, nil
}

func (f *syncFS) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.synced
	f.synced = nil
	return out
}

type syncFile struct {
	File
	name string
	fs   *syncFS
}

func (f syncFile) Sync() error {
	f.fs.mu.Lock()
	f.fs.synced = append(f.fs.synced, filepath.Base(f.name))
	f.fs.mu.Unlock()
	return f.File.Sync()
}

func TestSyncMakesNewSegmentsAndTheirJournalDurable(t *testing.T) {
	dir := t.TempDir()
	fs := &syncFS{FS: OS}
	s, _, err := Open(Config{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 256, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.Append(payload(0), 1)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	got := fs.take()
	seg := filepath.Base(segments(t, dir)[0])
	jnl := strings.TrimSuffix(seg, ".log") + ".jnl"
	want := []string{seg, jnl, filepath.Base(dir)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("synced %v, want %v: the segment, its journal and the directory naming it", got, want)
	}
	// No new segment: the directory need not be synced again.
	_ = s.Append(payload(1), 2)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := fs.take(); fmt.Sprint(got) != fmt.Sprint(want[:2]) {
		t.Fatalf("synced %v, want %v", got, want[:2])
	}
}

// journal is the path of the journal beside dir's only segment.
func journal(t *testing.T, dir string) string {
	t.Helper()
	return strings.TrimSuffix(segments(t, dir)[0], ".log") + ".jnl"
}

func TestTornJournalEntryIsCutAtOpen(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, 1<<20)
	for i := range 6 {
		_ = s.Append(payload(i), i+1)
	}
	drainN(t, s, 2)
	_ = s.Close()
	// A crash mid-write leaves the first bytes of an entry.
	f, err := os.OpenFile(journal(t, dir), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte{'D', 0})
	_ = f.Close()

	s, rec := open(t, dir, 1<<20)
	if rec.Records != 4 || rec.Resent != 0 {
		t.Fatalf("recovery %+v", rec)
	}
	// The next process delivers one more record; its marks must be read
	// as written, not shifted by the torn entry.
	drainN(t, s, 1)
	_ = s.Close()
	s, rec = open(t, dir, 1<<20)
	defer s.Close()
	if rec.Records != 3 || rec.Resent != 0 {
		t.Fatalf("after a second start: recovery %+v, want records 3 to 5 only, none resent", rec)
	}
	if got := drain(t, s, false); fmt.Sprint(got) != "[3 4 5]" {
		t.Fatalf("got %v", got)
	}
}

// drainN takes and finishes the n oldest records.
func drainN(t *testing.T, s *Spool, n int) {
	t.Helper()
	for range n {
		rec, _, ok, err := s.Next(false)
		if !ok || err != nil {
			t.Fatal(ok, err)
		}
		s.Finish(rec)
	}
}

func TestFailedJournalWriteLeavesNoTornEntry(t *testing.T) {
	dir := t.TempDir()
	fs := &faultyFS{FS: OS}
	s, _, err := Open(Config{Dir: dir, MaxBytes: 1 << 20, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		_ = s.Append(payload(i), i+1)
	}
	drainN(t, s, 1)
	// The disk fills: record 1's marks are torn writes.
	fs.setFull(true)
	drainN(t, s, 1)
	fs.setFull(false)
	drainN(t, s, 1)
	_ = s.Close()
	s, rec := open(t, dir, 1<<20)
	defer s.Close()
	// Record 1's marks are lost, as to a crash: it is sent again. Record
	// 2's were written after the failure and must be read as written.
	if got := drain(t, s, false); fmt.Sprint(got) != "[1 3]" || rec.Resent != 0 {
		t.Fatalf("got %v, recovery %+v; want [1 3], none resent", got, rec)
	}
}

func TestNewSegmentIgnoresAStaleJournal(t *testing.T) {
	dir := t.TempDir()
	// A crash between deleting a finished segment and its journal leaves
	// the journal alone, with marks for records of the same indices.
	stale := []byte{'D', 0, 0, 0, 0, 'D', 1, 0, 0, 0}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d.jnl", 0)), stale, 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := open(t, dir, 1<<20)
	_ = s.Append(payload(0), 1)
	_ = s.Append(payload(1), 2)
	_ = s.Close()
	s, rec := open(t, dir, 1<<20)
	defer s.Close()
	if got := drain(t, s, false); fmt.Sprint(got) != "[0 1]" || rec.Records != 2 {
		t.Fatalf("got %v, recovery %+v: the new segment's records were taken for finished by a stale journal", got, rec)
	}
}

func TestUnopenableSegmentIsSkipped(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, 1<<20)
	_ = s.Append(payload(0), 1)
	_ = s.Append(payload(1), 2)
	_ = s.Close()
	// Entries named like segments that cannot be opened as one: a
	// directory, and a link to nothing.
	odd := []string{filepath.Join(dir, fmt.Sprintf("%020d.log", 5)), filepath.Join(dir, fmt.Sprintf("%020d.log", 7))}
	if err := os.Mkdir(odd[0], 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere"), odd[1]); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	s, rec, err := Open(Config{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 256})
	if err != nil {
		t.Fatalf("Open = %v: one entry it cannot read must not keep the rest from being sent", err)
	}
	defer s.Close()
	if rec.Records != 2 || rec.Corrupt != 2 || len(rec.Skipped) != 2 || rec.CorruptBytes != 0 {
		t.Fatalf("recovery %+v", rec)
	}
	for i, err := range rec.Skipped {
		if !strings.Contains(err.Error(), filepath.Base(odd[i])) {
			t.Errorf("skipped %v: the error does not name %s", err, filepath.Base(odd[i]))
		}
	}
	if got := drain(t, s, false); fmt.Sprint(got) != "[0 1]" {
		t.Fatalf("got %v", got)
	}
	// New segments are numbered past the skipped entries, which are left.
	if err := s.Append(payload(2), 3); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, s, false); fmt.Sprint(got) != "[2]" {
		t.Fatalf("got %v", got)
	}
	for _, p := range odd {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
}

func TestOnlyRecordsThatMayHaveReachedTheBackendCountResent(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, 1<<20)
	for i := range 4 {
		_ = s.Append(payload(i), i+1)
	}
	var r [4]Record
	for i := range r {
		r[i], _, _, _ = s.Next(false)
	}
	s.Return(r[0], false) // never sent, or refused
	s.Return(r[1], true)  // sent without an answer
	s.Return(r[2], true)
	if again, _, _, _ := s.Next(true); again.Spans != r[2].Spans {
		t.Fatalf("took %+v again, want %+v", again, r[2])
	} else {
		s.Return(again, false) // refused this time, but maybe received before
	}
	_ = s.Close() // r[3] still in flight
	s, rec := open(t, dir, 1<<20)
	defer s.Close()
	if rec.Records != 4 || rec.Resent != 2+3+4 {
		t.Fatalf("recovery %+v, want 9 spans resent: those of records 1 to 3, not record 0, which never reached the backend", rec)
	}
}

// TestAppendSentCountsResent: spans written after they were sent without
// an answer (a request abandoned in flight) may have reached the backend
// already, and the next start counts them as Resent, also after they were
// taken from the disk and refused meanwhile; spans appended otherwise are
// not.
func TestAppendSentCountsResent(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, 1<<20)
	_ = s.Append(payload(0), 1)
	_ = s.AppendSent(payload(1), 2)
	_ = s.AppendSent(payload(2), 4)
	for range 3 {
		if r, _, ok, _ := s.Next(false); ok && r.Spans == 4 {
			s.Return(r, false) // refused this time
		} else if ok {
			s.Return(r, false)
		}
	}
	_ = s.Close()
	s, rec := open(t, dir, 1<<20)
	defer s.Close()
	if rec.Records != 3 || rec.Resent != 2+4 {
		t.Fatalf("recovery %+v, want the 6 spans appended as sent counted resent", rec)
	}
}

func TestVanishedDirectoryLosesWhatOnlyItHeld(t *testing.T) {
	for _, replaced := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "spool")
		s, _ := open(t, dir, 1<<20)
		for i := range 3 {
			_ = s.Append(payload(i), i+1)
		}
		inFlight, _, _, _ := s.Next(false)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if replaced {
			// Made again by hand: the same name, not the same directory.
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		err := s.Sync()
		var lost *LostError
		if !errors.As(err, &lost) || !errors.Is(err, ErrVanished) || lost.Records != 2 || lost.Spans != 2+3 {
			t.Fatalf("replaced %v: Sync = %v, want the 2 records not taken (5 spans) lost", replaced, err)
		}
		if r, sp, disk := s.Usage(); r != 0 || sp != 0 || disk != 0 || s.Backlog() {
			t.Fatalf("replaced %v: usage %d %d %d, backlog %v: the spool still counts what vanished", replaced, r, sp, disk, s.Backlog())
		}
		// The record in flight has no copy left on disk to go back to.
		if s.Return(inFlight, false) {
			t.Fatalf("replaced %v: a record of a vanished segment was put back", replaced)
		}
		// The spool is off: nothing more is written, and the loss is
		// reported once.
		if err := s.Append(payload(3), 4); !errors.Is(err, ErrVanished) || errors.As(err, &lost) {
			t.Fatalf("replaced %v: Append = %v", replaced, err)
		}
		if err := s.Sync(); err != nil {
			t.Fatalf("replaced %v: Sync again = %v", replaced, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if left := segments(t, dir); len(left) != 0 {
			t.Fatalf("replaced %v: segments written to the new directory: %v", replaced, left)
		}
	}
}

func TestVanishedDirectoryIsFoundAtClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s, _ := open(t, dir, 1<<20)
	_ = s.Append(payload(0), 1)
	_ = s.Append(payload(1), 2)
	_ = s.Close()
	// A backlog recovered, and no segment written since.
	s, _ = open(t, dir, 1<<20)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	var lost *LostError
	if err := s.Close(); !errors.As(err, &lost) || lost.Records != 2 || lost.Spans != 3 {
		t.Fatalf("Close = %v, want the 2 records recovered reported lost", err)
	}
}

func TestVanishedSegmentLosesItsRecordsOnly(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, 1<<20)
	defer s.Close()
	for i := range 8 { // records 0 to 3 in one segment of 256 bytes, 4 to 7 in the next
		_ = s.Append(payload(i), i+1)
	}
	segs := segments(t, dir)
	if len(segs) != 2 {
		t.Fatalf("segments %v", segs)
	}
	if err := os.Remove(segs[1]); err != nil {
		t.Fatal(err)
	}
	err := s.Sync()
	var lost *LostError
	if !errors.As(err, &lost) || lost.Records != 4 || lost.Spans != 5+6+7+8 {
		t.Fatalf("Sync = %v, want the records of the removed segment alone lost", err)
	}
	// The others are still sent, and the spool goes on.
	if err := s.Append(payload(9), 10); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, s, false); fmt.Sprint(got) != "[0 1 2 3 9]" {
		t.Fatalf("got %v", got)
	}
}

// take takes the next n records, oldest first.
func take(t *testing.T, s *Spool, n int) []Record {
	t.Helper()
	out := make([]Record, n)
	for i := range out {
		rec, _, ok, err := s.Next(false)
		if !ok || err != nil {
			t.Fatalf("record %d: ok %v, %v", i, ok, err)
		}
		out[i] = rec
	}
	return out
}

func TestReplaceKeepsOnlyWhatWasNotDelivered(t *testing.T) {
	for _, sent := range []bool{false, true} {
		dir := t.TempDir()
		s, _ := open(t, dir, 1<<20)
		for i := range 4 {
			_ = s.Append(payload(i), i+1)
		}
		r := take(t, s, 2)
		// Record 1 split: a part delivered; what was not, payload(9) of
		// 10 spans, goes back in its place.
		if kept, err := s.Replace(r[1], payload(9), 10, sent); !kept || err != nil {
			t.Fatalf("Replace = %v, %v", kept, err)
		}
		if recs, spans, _ := s.Usage(); recs != 4 || spans != 1+10+3+4 {
			t.Fatalf("usage %d records, %d spans", recs, spans)
		}
		if !s.Backlog() {
			t.Fatal("the part put back is not a backlog")
		}
		// In this process it keeps the age of the record it replaces.
		next, p, _, _ := s.Next(false)
		if !bytes.Equal(p, payload(9)) || next.Spans != 10 || next.Resent != sent {
			t.Fatalf("took %+v %q first, want the part", next, p)
		}
		s.Return(next, false)
		_ = s.Close() // record 0 still in flight
		s, rec := open(t, dir, 1<<20)
		want := 1 // record 0, taken and not finished
		if sent {
			want += 10
		}
		if rec.Records != 4 || rec.Spans != 1+3+4+10 || rec.Resent != want {
			t.Fatalf("sent %v: recovery %+v, want 4 records of 18 spans, %d resent", sent, rec, want)
		}
		if got := drain(t, s, false); fmt.Sprint(got) != "[0 2 3 9]" {
			t.Fatalf("got %v", got)
		}
		_ = s.Close()
	}
}

func TestReplaceFinishesTheRecordsSegment(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, 1<<20)
	defer s.Close()
	for i := range 5 { // records 0 to 3 in one segment of 256 bytes, 4 in the next
		_ = s.Append(payload(i), i+1)
	}
	r := take(t, s, 4)
	s.Finish(r[0])
	s.Finish(r[2])
	s.Finish(r[3])
	if kept, err := s.Replace(r[1], payload(9), 10, false); !kept || err != nil {
		t.Fatalf("Replace = %v, %v", kept, err)
	}
	if segs := segments(t, dir); len(segs) != 1 {
		t.Fatalf("segments %v: the first one has nothing left to send", segs)
	}
	if got := drain(t, s, false); fmt.Sprint(got) != "[9 4]" {
		t.Fatalf("got %v", got)
	}
}

// snapFS copies the spool's directory, as a crash would leave it, when the
// first journal is synced once armed.
type snapFS struct {
	FS
	dir, snap string
	armed     atomic.Bool
	once      sync.Once
	err       error
}

func (f *snapFS) OpenFile(n string, flag int, perm os.FileMode) (File, error) {
	file, err := f.FS.OpenFile(n, flag, perm)
	if err != nil {
		return nil, err
	}
	return snapFile{file, n, f}, nil
}

type snapFile struct {
	File
	name string
	fs   *snapFS
}

func (f snapFile) Sync() error {
	err := f.File.Sync()
	if strings.HasSuffix(f.name, ".jnl") && f.fs.armed.Load() {
		f.fs.once.Do(func() { f.fs.err = os.CopyFS(f.fs.snap, os.DirFS(f.fs.dir)) })
	}
	return err
}

// A crash after the part is written, before the record it replaces is
// finished, leaves both: the next start sends both, the part's spans twice,
// and counts all their spans Resent.
func TestCrashWhileReplacingCostsDuplicatesNotSpans(t *testing.T) {
	dir, snap := t.TempDir(), filepath.Join(t.TempDir(), "crash")
	fs := &snapFS{FS: OS, dir: dir, snap: snap}
	s, _, err := Open(Config{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 256, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 { // records 0 to 3 in one segment, 4 in the next
		_ = s.Append(payload(i), i+1)
	}
	r := take(t, s, 2)
	s.Return(r[0], false)
	fs.armed.Store(true)
	if kept, err := s.Replace(r[1], payload(9), 10, false); !kept || err != nil {
		t.Fatalf("Replace = %v, %v", kept, err)
	}
	_ = s.Close()
	if fs.err != nil {
		t.Fatal(fs.err)
	}

	crashed, rec := open(t, snap, 1<<20)
	if rec.Records != 6 || rec.Spans != 1+2+3+4+5+10 || rec.Resent != 2+10 {
		t.Fatalf("after the crash: recovery %+v, want all 6 records, those of the replaced one and the part resent", rec)
	}
	if got := drain(t, crashed, false); fmt.Sprint(got) != "[0 1 2 3 4 9]" {
		t.Fatalf("after the crash: got %v", got)
	}
	_ = crashed.Close()

	s, rec = open(t, dir, 1<<20)
	defer s.Close()
	if rec.Records != 5 || rec.Spans != 1+3+4+5+10 || rec.Resent != 0 {
		t.Fatalf("without the crash: recovery %+v, want the part in place of record 1, nothing resent", rec)
	}
	if got := drain(t, s, false); fmt.Sprint(got) != "[0 2 3 4 9]" {
		t.Fatalf("without the crash: got %v", got)
	}
}

func TestReplaceMakesThePartDurable(t *testing.T) {
	dir := t.TempDir()
	fs := &syncFS{FS: OS}
	s, _, err := Open(Config{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 256, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 4 {
		_ = s.Append(payload(i), i+1)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	fs.take()
	r := take(t, s, 1)
	if kept, err := s.Replace(r[0], payload(9), 10, false); !kept || err != nil {
		t.Fatalf("Replace = %v, %v", kept, err)
	}
	// The part starts a new segment: it, its journal and the directory.
	got := fs.take()
	if len(got) != 3 || !strings.HasSuffix(got[0], ".log") || !strings.HasSuffix(got[1], ".jnl") || got[2] != filepath.Base(dir) {
		t.Fatalf("synced %v, want the part's segment, its journal and the directory", got)
	}
}

// The disk budget counts the replaced record's bytes as free, once: the
// disk used exceeds it by at most one record.
func TestReplaceWithinTheBudget(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, 2*(headerSize+40))
	defer s.Close()
	_ = s.Append(payload(0), 1)
	_ = s.Append(payload(0), 1)
	if err := s.Append(payload(0), 1); !errors.Is(err, ErrFull) {
		t.Fatalf("Append = %v, want ErrFull", err)
	}
	r := take(t, s, 2)
	if kept, err := s.Replace(r[0], []byte("part"), 1, false); !kept || err != nil {
		t.Fatalf("Replace = %v, %v", kept, err)
	}
	if kept, err := s.Replace(r[1], bytes.Repeat([]byte{1}, 39), 1, false); kept || !errors.Is(err, ErrFull) {
		t.Fatalf("Replace = %v, %v; want ErrFull past one record over the budget", kept, err)
	}
	// That record is finished: what it held was delivered in part.
	if recs, spans, disk := s.Usage(); recs != 1 || spans != 1 || disk != 2*(headerSize+40)+headerSize+4 {
		t.Fatalf("usage %d records, %d spans, %d bytes", recs, spans, disk)
	}
}

func TestReplaceARecordLostWithItsSegment(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, 1<<20)
	defer s.Close()
	for i := range 8 { // records 0 to 3 in one segment, 4 to 7 in the next
		_ = s.Append(payload(i), i+1)
	}
	r := take(t, s, 5)
	if err := os.Remove(segments(t, dir)[1]); err != nil {
		t.Fatal(err)
	}
	var lost *LostError
	if err := s.Sync(); !errors.As(err, &lost) {
		t.Fatalf("Sync = %v", err)
	}
	if kept, err := s.Replace(r[4], payload(9), 10, false); kept || !errors.Is(err, ErrVanished) {
		t.Fatalf("Replace = %v, %v; want the record gone with its segment", kept, err)
	}
	if recs, spans, _ := s.Usage(); recs != 4 || spans != 1+2+3+4 {
		t.Fatalf("usage %d records, %d spans", recs, spans)
	}
}
