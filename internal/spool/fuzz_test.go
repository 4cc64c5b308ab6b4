package spool

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// noSyncFS is the OS's file system without fsync: what the fuzz targets
// check is what a process reads back, not what survives a power loss, and
// an fsync per run would take most of the fuzzing time.
type noSyncFS struct{ FS }

func (f noSyncFS) OpenFile(n string, flag int, perm os.FileMode) (File, error) {
	file, err := f.FS.OpenFile(n, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{file}, nil
}

type noSyncFile struct{ File }

func (noSyncFile) Sync() error { return nil }

// segmentName is the file name of segment id with extension ext.
func segmentName(id uint64, ext string) string { return fmt.Sprintf("%020d.%s", id, ext) }

// sealed reports whether data holds at off a whole record of payload p
// and spans spans that passes its checksum: what Next returns must be
// found so in the segment it was recovered from.
func sealed(data []byte, off int, p []byte, spans int) bool {
	if off < 0 || off+headerSize+len(p) > len(data) {
		return false
	}
	h := data[off : off+headerSize]
	return binary.LittleEndian.Uint32(h[0:]) == magic &&
		int(binary.LittleEndian.Uint32(h[4:])) == len(p) &&
		int(binary.LittleEndian.Uint32(h[8:])) == spans &&
		binary.LittleEndian.Uint32(h[12:]) == checksum(h[8:12], p) &&
		bytes.Equal(data[off+headerSize:off+headerSize+len(p)], p)
}

// recoverySeeds returns segments and journals as the unit tests make
// them: sound, torn at the tail, damaged in a payload or a length, with a
// torn journal entry, and a stale journal.
func recoverySeeds(f *testing.F) [][2][]byte {
	dir := f.TempDir()
	s, _, err := Open(Config{Dir: dir, MaxBytes: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 6 {
		_ = s.Append(payload(i), i+1)
	}
	var taken []Record
	for range 4 {
		r, _, _, _ := s.Next(false)
		taken = append(taken, r)
	}
	s.Finish(taken[0])
	s.Return(taken[1], true)
	s.Return(taken[2], false)
	if err := s.Close(); err != nil {
		f.Fatal(err)
	}
	log, err := os.ReadFile(filepath.Join(dir, segmentName(0, "log")))
	if err != nil {
		f.Fatal(err)
	}
	jnl, err := os.ReadFile(filepath.Join(dir, segmentName(0, "jnl")))
	if err != nil {
		f.Fatal(err)
	}
	flip := func(off int, mask byte) []byte {
		b := bytes.Clone(log)
		b[off] ^= mask
		return b
	}
	return [][2][]byte{
		{nil, nil},
		{log, nil},
		{log, jnl},
		{log[:len(log)-7], jnl},               // a torn tail
		{log[:recordAt(2)+headerSize/2], jnl}, // a torn header
		{flip(recordAt(1)+headerSize+3, 0xff), jnl},  // a damaged payload
		{flip(recordAt(1)+4, 0x01), jnl},             // a damaged length
		{flip(recordAt(1), 0x01), jnl},               // a damaged magic
		{log, append(bytes.Clone(jnl), 'D', 0)},      // a torn journal entry
		{log, []byte{'D', 0, 0, 0, 0, 'D', 1, 0, 0}}, // a stale, torn journal
		{log, []byte{'T', 9, 0, 0, 0, 'D', 0xff, 0xff, 0xff, 0xff, 'X', 3, 0, 0, 0}},
		{bytes.Repeat([]byte("PSKT"), 8), nil}, // the magic alone
	}
}

// FuzzRecover opens a spool whose only segment and journal hold
// arbitrary bytes. Open must not fail or panic; every record it returns
// is one found whole in the segment, passing its checksum, and not
// finished in the journal; the recovery's counts are consistent with the
// records taken; and the spool drains, closes, and leaves nothing behind.
func FuzzRecover(f *testing.F) {
	for _, s := range recoverySeeds(f) {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, log, jnl []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(0, "log")), log, 0o600); err != nil {
			t.Fatal(err)
		}
		if jnl != nil {
			if err := os.WriteFile(filepath.Join(dir, segmentName(0, "jnl")), jnl, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		s, rec, err := Open(Config{Dir: dir, MaxBytes: 1 << 30, FS: noSyncFS{OS}})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if rec.Records < 0 || rec.Spans < 0 || rec.Resent < 0 || rec.Resent > rec.Spans ||
			rec.Corrupt < 0 || rec.CorruptBytes < 0 || rec.CorruptBytes > int64(len(log)) ||
			(rec.Corrupt > 0) != (rec.CorruptBytes > 0) || len(rec.Skipped) != 0 ||
			rec.Records*headerSize > len(log)-int(rec.CorruptBytes) {
			t.Fatalf("recovery %+v of a %d-byte segment", rec, len(log))
		}
		if records, spans, _ := s.Usage(); records != rec.Records || spans != rec.Spans {
			t.Fatalf("usage %d records, %d spans; recovery %+v", records, spans, rec)
		}
		taken, done := parseJournal(jnl)
		var records, spans, resent int
		last := -1
		for {
			r, p, ok, err := s.Next(false)
			if err != nil {
				t.Fatalf("Next: %v: a record that passed its check at Open fails it now", err)
			}
			if !ok {
				break
			}
			if records++; records > rec.Records {
				t.Fatalf("more records taken than the %d recovered", rec.Records)
			}
			// Where the spool found it, and in the order of the segment.
			off := int(s.pending[0].off) - headerSize
			if !sealed(log, off, p, r.Spans) || off <= last {
				t.Fatalf("record %d at %d (%d bytes, %d spans) is not a sound record of the segment, after %d", r.index, off, len(p), r.Spans, last)
			}
			last = off
			if done[r.index] {
				t.Fatalf("record %d is finished in the journal, and taken again", r.index)
			}
			if r.Resent != taken[r.index] {
				t.Fatalf("record %d: Resent %v, journal says taken %v", r.index, r.Resent, taken[r.index])
			}
			spans += r.Spans
			if r.Resent {
				resent += r.Spans
			}
			s.Finish(r)
		}
		if records != rec.Records || spans != rec.Spans || resent != rec.Resent {
			t.Fatalf("took %d records, %d spans, %d resent; recovery %+v", records, spans, resent, rec)
		}
		if records, spans, disk := s.Usage(); records != 0 || spans != 0 || disk != 0 {
			t.Fatalf("usage %d %d %d after finishing everything", records, spans, disk)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			if de.Name() != "LOCK" {
				t.Errorf("%s left after finishing everything", de.Name())
			}
		}
	})
}

// appended is a record the round trip appended: where it went, and what
// became of it before the spool closed.
type appended struct {
	rec     Record
	payload []byte
	off     int // in its segment
	op      byte
}

// Ops on the records appended, all taken, before the spool closes.
const (
	opRefused  = iota // put back unsent
	opFinish          // delivered
	opInFlight        // unanswered at the close
	opSent            // put back, maybe received
)

// FuzzRoundTrip appends records derived from the input, takes and
// finishes or puts back some, closes, cuts the last segment and its
// journal at any byte, and opens the directory again: every record not
// finished comes back byte for byte, with its spans and whether it may
// have been sent, but those of the last segment's torn tail, which are
// counted corrupt once, and whose bytes are counted; a mark cut from the
// journal is lost alone. A second start finds the same, and no
// corruption.
func FuzzRoundTrip(f *testing.F) {
	// Seeds: records of payload(i) as the unit tests write them, each
	// record's op and spans in its first byte and its size in the second.
	var unit []byte
	for i := range 8 {
		unit = append(unit, byte(i%4)|byte(i+1)<<2, byte(len(payload(i))))
		unit = append(unit, payload(i)...)
	}
	f.Add(unit, uint16(256), uint32(0), uint32(0))
	f.Add(unit, uint16(256), uint32(1+100), uint32(0))
	f.Add(unit, uint16(0), uint32(0), uint32(1+7))
	f.Add(unit, uint16(1000), uint32(1+recordAt(3)+5), uint32(1+12))
	f.Add([]byte{opFinish, 3, 'a', 'b', 'c', opFinish, 0}, uint16(0), uint32(0), uint32(0))
	f.Add([]byte{opInFlight << 2, 0, opRefused, 1, 0}, uint16(64), uint32(1), uint32(1))
	f.Fuzz(func(t *testing.T, data []byte, segBytes uint16, cutLog, cutJnl uint32) {
		dir := t.TempDir()
		cfg := Config{Dir: dir, MaxBytes: 1 << 30, SegmentBytes: 32 + int64(segBytes)%1024, FS: noSyncFS{OS}}
		s, _, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var recs []appended
		for len(data) >= 2 && len(recs) < 64 {
			op, spans := data[0]&3, int(data[0]>>2)
			n := min(int(data[1]), len(data)-2)
			p := bytes.Clone(data[2 : 2+n])
			data = data[2+n:]
			if err := s.Append(p, spans); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, appended{rec: Record{Spans: spans}, payload: p, op: op})
		}
		offs := map[uint64]int{} // the size of each segment
		for i := range recs {
			r, p, ok, err := s.Next(false)
			if !ok || err != nil || !bytes.Equal(p, recs[i].payload) || r.Spans != recs[i].rec.Spans {
				t.Fatalf("record %d read back as %q, %+v (%v, %v)", i, p, r, ok, err)
			}
			recs[i].rec = r
			recs[i].off = offs[r.seg]
			offs[r.seg] += headerSize + len(p)
		}
		for _, a := range recs {
			switch a.op {
			case opRefused:
				s.Return(a.rec, false)
			case opFinish:
				s.Finish(a.rec)
			case opSent:
				s.Return(a.rec, true)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		// What is on disk before the cut is what the ops said.
		logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		slices.Sort(logs)
		onDisk := map[uint64]bool{}
		for _, name := range logs {
			var id uint64
			if _, err := fmt.Sscanf(filepath.Base(name), "%d.log", &id); err != nil {
				t.Fatal(err)
			}
			onDisk[id] = true
		}
		jnls := map[uint64][]byte{}
		for id := range onDisk {
			jnls[id], _ = os.ReadFile(filepath.Join(dir, segmentName(id, "jnl")))
			taken, done := parseJournal(jnls[id])
			for _, a := range recs {
				if a.rec.seg != id {
					continue
				}
				if done[a.rec.index] != (a.op == opFinish) || a.op != opFinish && taken[a.rec.index] != (a.op == opInFlight || a.op == opSent) {
					t.Fatalf("segment %d record %d (op %d): journal says taken %v, done %v", id, a.rec.index, a.op, taken[a.rec.index], done[a.rec.index])
				}
			}
		}
		for _, a := range recs {
			if a.op != opFinish && !onDisk[a.rec.seg] {
				t.Fatalf("segment %d holding an unfinished record was deleted", a.rec.seg)
			}
		}

		// Cut the last segment and its journal.
		var lastID uint64
		var logCut int64 = -1 // the last segment's length after the cut
		if len(logs) > 0 {
			// Zero-padded: the last name is the newest segment.
			name := logs[len(logs)-1]
			if _, err := fmt.Sscanf(filepath.Base(name), "%d.log", &lastID); err != nil {
				t.Fatal(err)
			}
			info, err := os.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			logCut = info.Size()
			if cutLog > 0 {
				logCut = int64(cutLog-1) % (info.Size() + 1)
				if err := os.Truncate(name, logCut); err != nil {
					t.Fatal(err)
				}
			}
			if j := jnls[lastID]; cutJnl > 0 {
				jnls[lastID] = j[:int(cutJnl-1)%(len(j)+1)]
				if err := os.Truncate(filepath.Join(dir, segmentName(lastID, "jnl")), int64(len(jnls[lastID]))); err != nil {
					t.Fatal(err)
				}
			}
		}

		// What must come back: each record not finished by the journal
		// left, and whole in its segment.
		var want []appended
		var wantRec Recovery
		for _, a := range recs {
			taken, done := parseJournal(jnls[a.rec.seg])
			if !onDisk[a.rec.seg] || done[a.rec.index] {
				continue
			}
			end := a.off + headerSize + len(a.payload)
			if a.rec.seg == lastID && int64(end) > logCut {
				if int64(a.off) < logCut {
					wantRec.Corrupt++
					wantRec.CorruptBytes += logCut - int64(a.off)
				}
				continue
			}
			a.rec.Resent = taken[a.rec.index]
			want = append(want, a)
			wantRec.Records++
			wantRec.Spans += a.rec.Spans
			if a.rec.Resent {
				wantRec.Resent += a.rec.Spans
			}
		}
		// A finished record's bytes torn too count, though it is not sent.
		for _, a := range recs {
			_, done := parseJournal(jnls[a.rec.seg])
			if a.rec.seg == lastID && onDisk[lastID] && done[a.rec.index] &&
				int64(a.off) < logCut && int64(a.off+headerSize+len(a.payload)) > logCut {
				wantRec.Corrupt++
				wantRec.CorruptBytes += logCut - int64(a.off)
			}
		}

		for start := range 2 {
			s, rec, err := Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if start == 1 {
				// The torn tail was cut at the first start.
				wantRec.Corrupt, wantRec.CorruptBytes = 0, 0
			}
			if rec.Records != wantRec.Records || rec.Spans != wantRec.Spans || rec.Resent != wantRec.Resent ||
				rec.Corrupt != wantRec.Corrupt || rec.CorruptBytes != wantRec.CorruptBytes || len(rec.Skipped) != 0 {
				t.Fatalf("start %d: recovery %+v, want %+v", start+1, rec, wantRec)
			}
			if start == 0 {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				continue
			}
			for i, a := range want {
				r, p, ok, err := s.Next(false)
				if !ok || err != nil || !bytes.Equal(p, a.payload) || r.Spans != a.rec.Spans || r.Resent != a.rec.Resent {
					t.Fatalf("record %d came back as %q, %+v (%v, %v); want %q, %+v", i, p, r, ok, err, a.payload, a.rec)
				}
				s.Finish(r)
			}
			if _, _, ok, _ := s.Next(false); ok {
				t.Fatal("more records came back than were kept")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
