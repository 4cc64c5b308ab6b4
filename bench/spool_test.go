package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tracekeeper/tracekeeper/internal/otlpenc"
	"github.com/tracekeeper/tracekeeper/internal/otlptest"
	"github.com/tracekeeper/tracekeeper/internal/spool"
)

// The spool's storage, chosen by measurement (issue 11, "Storage"): our
// append-only segment log (internal/spool) against a queue on
// go.etcd.io/bbolt kept the way the Collector's persistent queue keeps it.

const (
	spoolRecordSpans = 512
	spoolRecords     = 64 // per benchmark iteration: 32768 spans, about 11 MB
)

// spoolPayload is one encoded request of 512 spans with eight attributes
// each, as the exporter spools it.
func spoolPayload(tb testing.TB) []byte {
	tb.Helper()
	reqs, _ := otlpenc.NewEncoder().Encode(otlptest.SDKSpans(spoolRecordSpans), 1<<20, nil)
	if len(reqs) != 1 || reqs[0].Spans() != spoolRecordSpans {
		tb.Fatalf("encoded %d requests, want one of %d spans", len(reqs), spoolRecordSpans)
	}
	p := bytes.Clone(reqs[0].Bytes())
	reqs[0].Release()
	return p
}

// spoolStore is what the benchmark needs of a store.
type spoolStore interface {
	append(p []byte, spans int) error
	// drain reads back every record, oldest first, and finishes it.
	drain(each func(p []byte, spans int)) error
	close() error
}

type storeKind struct {
	name string
	open func(dir string, fsync bool) (spoolStore, error)
}

var storeKinds = []storeKind{
	{"segment-log", openSegmentLog},
	{"bbolt", openBoltQueue},
}

// segmentLog is internal/spool; fsync is Sync after every Append.
type segmentLog struct {
	s     *spool.Spool
	fsync bool
}

func openSegmentLog(dir string, fsync bool) (spoolStore, error) {
	s, _, err := spool.Open(spool.Config{Dir: dir, MaxBytes: 1 << 40})
	if err != nil {
		return nil, err
	}
	return &segmentLog{s: s, fsync: fsync}, nil
}

func (l *segmentLog) append(p []byte, spans int) error {
	if err := l.s.Append(p, spans); err != nil {
		return err
	}
	if l.fsync {
		return l.s.Sync()
	}
	return nil
}

func (l *segmentLog) drain(each func([]byte, int)) error {
	for {
		rec, p, ok, err := l.s.Next(false)
		if !ok {
			return nil
		}
		if err != nil {
			return err
		}
		each(p, rec.Spans)
		l.s.Finish(rec)
	}
}

func (l *segmentLog) close() error { return l.s.Close() }

// boltQueue is a queue on bbolt as the Collector's persistent queue keeps
// one: one bucket, big-endian uint64 keys, each Put in an Update
// transaction of its own, read back in key order, Delete on finish, and
// the Collector's file storage options (fsync off by default there;
// fsync is NoSync false).
type boltQueue struct {
	db   *bbolt.DB
	next uint64
}

var boltBucket = []byte("queue")

const boltFile = "queue.db"

func openBoltQueue(dir string, fsync bool) (spoolStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	db, err := bbolt.Open(filepath.Join(dir, boltFile), 0o600, &bbolt.Options{
		Timeout:        time.Second,
		NoSync:         !fsync,
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
	})
	if err != nil {
		return nil, err
	}
	q := &boltQueue{db: db}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(boltBucket)
		if err != nil {
			return err
		}
		if k, _ := b.Cursor().Last(); k != nil {
			q.next = binary.BigEndian.Uint64(k) + 1
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return q, nil
}

func (q *boltQueue) append(p []byte, _ int) error {
	key := binary.BigEndian.AppendUint64(nil, q.next)
	q.next++
	return q.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(boltBucket).Put(key, p) })
}

func (q *boltQueue) drain(each func([]byte, int)) error {
	for {
		var key, p []byte
		err := q.db.View(func(tx *bbolt.Tx) error {
			k, v := tx.Bucket(boltBucket).Cursor().First()
			key, p = bytes.Clone(k), bytes.Clone(v) // the mmap is not ours past the transaction
			return nil
		})
		if err != nil || key == nil {
			return err
		}
		each(p, spoolRecordSpans)
		if err := q.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(boltBucket).Delete(key) }); err != nil {
			return err
		}
	}
}

func (q *boltQueue) close() error { return q.db.Close() }

// dirBytes sums the sizes of the files in dir.
func dirBytes(tb testing.TB, dir string) int64 {
	tb.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	for _, de := range des {
		info, err := de.Info()
		if err != nil {
			tb.Fatal(err)
		}
		n += info.Size()
	}
	return n
}

func copyDir(tb testing.TB, from, to string) {
	tb.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkSpoolStore measures, for the segment log and the bbolt queue,
// on records of one encoded 512-span request (about 170 KB):
//
//   - write/fsync and write/nosync: spoolRecords records appended to an
//     empty store, with an fsync after every record or none; spans/s, MB/s,
//     ms/record, and the bytes/span of the files left after the close (their
//     apparent size: bbolt grows its file ahead of the data, sparsely, so
//     it allocates fewer blocks than that on most file systems);
//   - replay: a store of spoolRecords records written without fsync is
//     reopened and every record read back and finished, as after a
//     restart; spans/s, open-ms (Open alone), and drained-bytes, what the
//     store still holds on disk once empty. The files are in the page
//     cache: this is the CPU and syscall cost of replay, not a cold disk.
func BenchmarkSpoolStore(b *testing.B) {
	payload := spoolPayload(b)
	for _, kind := range storeKinds {
		for _, fsync := range []bool{true, false} {
			name := kind.name + "/write/nosync"
			if fsync {
				name = kind.name + "/write/fsync"
			}
			b.Run(name, func(b *testing.B) {
				base := b.TempDir()
				var disk int64
				for i := range b.N {
					b.StopTimer()
					dir := filepath.Join(base, strconv.Itoa(i))
					st, err := kind.open(dir, fsync)
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					for range spoolRecords {
						if err := st.append(payload, spoolRecordSpans); err != nil {
							b.Fatal(err)
						}
					}
					if err := st.close(); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					disk = dirBytes(b, dir)
					if err := os.RemoveAll(dir); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				sec := b.Elapsed().Seconds()
				records := float64(b.N * spoolRecords)
				b.ReportMetric(records*spoolRecordSpans/sec, "spans/s")
				b.ReportMetric(records*float64(len(payload))/sec/1e6, "MB/s")
				b.ReportMetric(sec*1e3/records, "ms/record")
				b.ReportMetric(float64(disk)/(spoolRecords*spoolRecordSpans), "bytes/span")
			})
		}
		b.Run(kind.name+"/replay", func(b *testing.B) {
			golden := filepath.Join(b.TempDir(), "golden")
			st, err := kind.open(golden, false)
			if err != nil {
				b.Fatal(err)
			}
			for range spoolRecords {
				if err := st.append(payload, spoolRecordSpans); err != nil {
					b.Fatal(err)
				}
			}
			if err := st.close(); err != nil {
				b.Fatal(err)
			}
			base := b.TempDir()
			var open time.Duration
			var drained int64
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				dir := filepath.Join(base, strconv.Itoa(i))
				copyDir(b, golden, dir)
				b.StartTimer()
				start := time.Now()
				st, err := kind.open(dir, false)
				if err != nil {
					b.Fatal(err)
				}
				open += time.Since(start)
				var records, spans int
				err = st.drain(func(p []byte, n int) {
					if len(p) != len(payload) {
						b.Fatalf("record of %d bytes, want %d", len(p), len(payload))
					}
					records++
					spans += n
				})
				if err != nil {
					b.Fatal(err)
				}
				if err := st.close(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if records != spoolRecords || spans != spoolRecords*spoolRecordSpans {
					b.Fatalf("replayed %d records, %d spans; want %d, %d", records, spans, spoolRecords, spoolRecords*spoolRecordSpans)
				}
				drained = dirBytes(b, dir)
				if err := os.RemoveAll(dir); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N*spoolRecords*spoolRecordSpans)/sec, "spans/s")
			b.ReportMetric(float64(open.Milliseconds())/float64(b.N), "open-ms")
			b.ReportMetric(float64(drained), "drained-bytes")
		})
	}
}

// tornRecords are distinct copies of the payload, so that a store that
// returns the wrong bytes is caught.
func tornRecords(tb testing.TB, n int) [][]byte {
	payload := spoolPayload(tb)
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = bytes.Clone(payload)
		binary.BigEndian.PutUint64(recs[i][len(payload)/2:], 0x5eed0000+uint64(i))
	}
	return recs
}

func sum(p []byte) string { s := sha256.Sum256(p); return hex.EncodeToString(s[:8]) }

// tornCase damages a copy of a store's data file.
type tornCase struct {
	name   string
	damage func(data []byte, recs [][]byte) []byte
	// want is how many of the five records the segment log must give
	// back; lost, when not negative, is the one record it skips among
	// them (-1: what it gives back is the first want).
	want, lost int
}

func tornCases() []tornCase {
	// The cuts are placed by where the records are in the file, found by
	// their bytes: bbolt grows its file ahead of the data, so a cut at a
	// fraction of the file can miss every record.
	cut := func(at func(data []byte, recs [][]byte) int) func([]byte, [][]byte) []byte {
		return func(data []byte, recs [][]byte) []byte {
			if i := at(data, recs); i >= 0 {
				return data[:i]
			}
			return nil
		}
	}
	in := func(rec int, frac float64) func([]byte, [][]byte) int {
		return func(data []byte, recs [][]byte) int {
			i := bytes.Index(data, recs[rec])
			if i < 0 {
				return -1
			}
			return i + int(frac*float64(len(recs[rec])))
		}
	}
	return []tornCase{
		{"cut-last-byte", cut(func(d []byte, _ [][]byte) int { return len(d) - 1 }), 4, -1},
		{"cut-mid-record-4", cut(in(4, 0.5)), 4, -1},
		{"cut-at-record-4", cut(in(4, 0)), 4, -1},
		{"cut-mid-record-2", cut(in(2, 0.5)), 2, -1},
		{"cut-at-4KiB", cut(func([]byte, [][]byte) int { return 4096 }), 0, -1},
		{
			// Not a torn tail: 4 KiB of record 2 never reached the disk
			// (zeros), as an unsynced page can be after a power loss.
			"zeroed-4KiB-in-record-2",
			func(data []byte, recs [][]byte) []byte {
				at := bytes.Index(data, recs[2])
				if at < 0 {
					return nil
				}
				data = bytes.Clone(data)
				clear(data[at+len(recs[2])/2 : at+len(recs[2])/2+4096])
				return data
			},
			// The segment log skips the damaged record alone: its
			// header still says where the next one starts.
			4, 2,
		},
	}
}

// TestSpoolStoresSurviveATornTail writes five records with each store,
// damages the data file as a crash can, and reopens it. The segment log
// must open and give back, intact, every whole record before the damage
// (and, when only one record is damaged within, every record but it);
// what bbolt does is logged, not asserted. bbolt is probed in a child
// process, since a damaged file can fault its mmap or panic it in a
// goroutine of its own.
func TestSpoolStoresSurviveATornTail(t *testing.T) {
	if dir := os.Getenv("TK_BOLT_PROBE"); dir != "" {
		boltProbe(dir)
		return
	}
	const n = 5
	recs := tornRecords(t, n)

	t.Run("segment-log", func(t *testing.T) {
		golden := t.TempDir()
		st, err := openSegmentLog(golden, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err := st.append(r, spoolRecordSpans); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.close(); err != nil {
			t.Fatal(err)
		}
		logs, _ := filepath.Glob(filepath.Join(golden, "*.log"))
		if len(logs) != 1 {
			t.Fatalf("%d segments, want 1", len(logs))
		}
		data, err := os.ReadFile(logs[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range tornCases() {
			dir := t.TempDir()
			copyDir(t, golden, dir)
			damaged := tc.damage(data, recs)
			if damaged == nil {
				t.Fatalf("%s: record not found in the file", tc.name)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(logs[0])), damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			s, rec, err := spool.Open(spool.Config{Dir: dir, MaxBytes: 1 << 40})
			if err != nil {
				t.Fatalf("%s: does not open: %v", tc.name, err)
			}
			var expect [][]byte
			for i, r := range recs {
				if i != tc.lost {
					expect = append(expect, r)
				}
			}
			var got int
			for {
				r, p, ok, err := s.Next(false)
				if !ok {
					break
				}
				if err != nil || got >= len(expect) || !bytes.Equal(p, expect[got]) {
					t.Errorf("%s: record %d back: err %v, not the one expected", tc.name, got, err)
				}
				s.Finish(r)
				got++
			}
			_ = s.Close()
			want := tc.want
			t.Logf("segment-log %-24s opens, %d/%d records intact, recovery %+v", tc.name, got, n, rec)
			if got != want || rec.Records != want {
				t.Errorf("%s: %d records back (recovery %d), want %d", tc.name, got, rec.Records, want)
			}
		}
	})

	t.Run("bbolt", func(t *testing.T) {
		golden := t.TempDir()
		st, err := openBoltQueue(golden, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err := st.append(r, spoolRecordSpans); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.close(); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(golden, boltFile))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{}
		for i, r := range recs {
			want[sum(r)] = i
		}
		t.Logf("bbolt file: %d bytes for %d records of %d", len(data), n, len(recs[0]))
		for _, tc := range tornCases() {
			dir := t.TempDir()
			damaged := tc.damage(data, recs)
			if damaged == nil {
				t.Logf("bbolt %-24s record not found contiguous in the file", tc.name)
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, boltFile), damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSpoolStoresSurviveATornTail$", "-test.count=1")
			cmd.Env = append(os.Environ(), "TK_BOLT_PROBE="+dir)
			out, runErr := cmd.CombinedOutput()
			cancel()
			var intact, wrong int
			var status []string
			sc := bufio.NewScanner(bytes.NewReader(out))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				line, ok := strings.CutPrefix(sc.Text(), "probe: ")
				if !ok {
					continue
				}
				if h, ok := strings.CutPrefix(line, "record "); ok {
					if _, ok := want[h]; ok {
						intact++
					} else {
						wrong++
					}
					continue
				}
				status = append(status, line)
			}
			exit := "exit 0"
			if runErr != nil {
				exit = runErr.Error()
				for _, sig := range []string{"panic:", "fatal error:", "unexpected fault address", "signal "} {
					if i := bytes.Index(out, []byte(sig)); i >= 0 {
						line, _, _ := bytes.Cut(out[i:], []byte("\n"))
						status = append(status, "died: "+string(line))
						break
					}
				}
			}
			t.Logf("bbolt %-24s %s; %d/%d records intact, %d returned with wrong bytes; %s",
				tc.name, strings.Join(status, "; "), intact, n, wrong, exit)
		}
	})
}

// boltProbe opens the bbolt queue in dir, reads every record and prints
// what happened; it runs in the child process.
func boltProbe(dir string) {
	debug.SetPanicOnFault(true)
	defer func() {
		if r := recover(); r != nil {
			fmt.Printf("probe: panicked reading: %v\n", r)
		}
	}()
	db, err := bbolt.Open(filepath.Join(dir, boltFile), 0o600, &bbolt.Options{
		Timeout: time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType,
	})
	if err != nil {
		fmt.Printf("probe: does not open: %v\n", err)
		return
	}
	defer db.Close()
	fmt.Println("probe: opens")
	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(boltBucket)
		if b == nil {
			return errors.New("bucket gone")
		}
		return b.ForEach(func(_, v []byte) error {
			fmt.Printf("probe: record %s\n", sum(v))
			return nil
		})
	})
	if err != nil {
		fmt.Printf("probe: read error: %v\n", err)
	}
	var problems int
	_ = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			if problems == 0 {
				fmt.Printf("probe: tx.Check: %v\n", err)
			}
			problems++
		}
		return nil
	})
	fmt.Printf("probe: tx.Check reports %d problems\n", problems)
}
