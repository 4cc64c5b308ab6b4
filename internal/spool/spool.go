// Package spool keeps encoded requests on disk while the backend cannot
// take them, and across restarts.
//
// A spool is a directory of append-only segment files. Each record is a
// header (magic, payload length, span count, CRC-32C of the span count
// and payload) followed by the payload, an encoded
// ExportTraceServiceRequest. Beside each segment, a small journal notes
// which of its records were taken for sending ('T'), put back without
// having reached the backend ('R') and finished, delivered or given up
// ('D'), so that a restart sends again only what was not finished, and
// knows which of those may be duplicates. A segment whose records are all
// finished is deleted. A record split on the way, a part of it delivered,
// is replaced by a new record holding the rest, written before the first
// is marked finished (see Replace). A journal written before 'R' existed reads the
// same: every record it says was taken is counted as possibly sent.
//
// Crash safety: a torn or corrupt record (power loss, kill -9 mid-write)
// fails its checksum and is skipped and counted. A record damaged within
// its payload, between sound records, is the only one lost; after a torn
// tail or a damaged header, where the next record starts is unknown, so
// the rest of its segment (at most a segment's size) is skipped too, and
// the spool goes on with the next segment. A journal entry torn by a
// crash is cut at the next Open, and one torn by a failed write at once,
// so that the entries appended after it are read as written; the mark it
// held is lost, as to a crash. A segment that cannot be opened or read is
// left as it is, counted and reported; the others are recovered. Records
// are made durable by Sync: what was appended since the last Sync can be
// lost to a power loss, never to a process crash (the kernel has it).
//
// A directory removed or replaced while the spool runs (or a segment file
// in it) is found by Sync, when a new segment starts, and by Close, which
// compare what the names lead to with the files the spool keeps open: the
// records there that were not taken are lost, and reported once by a
// *LostError; a vanished directory turns the spool off.
//
// One process at a time: Open takes an exclusive lock on the directory.
package spool

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

const (
	magic      = 0x544b5350 // "TKSP"
	headerSize = 16
	// DefaultSegmentBytes is the size past which a new segment starts.
	DefaultSegmentBytes = 4 << 20
	maxRecordBytes      = 1 << 30
	// entrySize is the size of a journal entry: an op and a record index.
	entrySize = 5
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Errors.
var (
	// ErrFull: the disk budget has no room for the record.
	ErrFull = errors.New("spool: disk budget full")
	// ErrLocked: another process uses the directory.
	ErrLocked = errors.New("spool: directory in use by another process")
	// ErrClosed: the spool was closed.
	ErrClosed = errors.New("spool: closed")
	// ErrVanished: the spool's directory, or a segment in it, was removed
	// or replaced since it was opened.
	ErrVanished = errors.New("spool: directory or segment vanished")
)

// LostError reports records lost with a vanished directory or segment:
// Records of them, holding Spans spans, were not taken, and are gone from
// the spool. It is returned once, by the call that found them gone
// (Append, Sync or Close); a record of them that was taken is lost too
// unless it is finished, and Return reports it. Err wraps ErrVanished.
type LostError struct {
	Records, Spans int
	Err            error
}

func (e *LostError) Error() string {
	return fmt.Sprintf("%v: %d records (%d spans) lost", e.Err, e.Records, e.Spans)
}

func (e *LostError) Unwrap() error { return e.Err }

// FS is what the spool needs of a file system; tests inject faults.
type FS interface {
	MkdirAll(path string, perm os.FileMode) error
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	ReadDir(name string) ([]os.DirEntry, error)
	Remove(name string) error
	Stat(name string) (os.FileInfo, error)
}

// File is an open file.
type File interface {
	io.ReaderAt
	io.Writer
	io.Closer
	Sync() error
	Stat() (os.FileInfo, error)
	Truncate(size int64) error
}

// OS is the operating system's file system.
var OS FS = osFS{}

type osFS struct{}

func (osFS) MkdirAll(p string, perm os.FileMode) error { return os.MkdirAll(p, perm) }
func (osFS) OpenFile(n string, f int, perm os.FileMode) (File, error) {
	return os.OpenFile(n, f, perm)
}
func (osFS) ReadDir(n string) ([]os.DirEntry, error) { return os.ReadDir(n) }
func (osFS) Remove(n string) error                   { return os.Remove(n) }
func (osFS) Stat(n string) (os.FileInfo, error)      { return os.Stat(n) }

// lockFile is the open LOCK file: it stays open, and so names the
// directory the spool opened for as long as it runs.
type lockFile interface {
	io.Closer
	Stat() (os.FileInfo, error)
}

// Config configures a spool.
type Config struct {
	Dir string
	// MaxBytes bounds the disk the segments use.
	MaxBytes int64
	// SegmentBytes is the size past which a new segment starts; zero
	// means DefaultSegmentBytes.
	SegmentBytes int64
	// FS is the file system; nil means OS.
	FS FS
}

// Record identifies a record taken with Next.
type Record struct {
	seg   uint64
	index uint32
	Spans int
	// Resent is set when an earlier process took the record for sending
	// and did not finish it: it may reach the backend twice.
	Resent bool
}

// Recovery describes what Open found.
type Recovery struct {
	// Records and Spans are the unfinished records found, Resent of those
	// spans were taken for sending by the earlier process.
	Records, Spans, Resent int
	// Corrupt counts the damaged records skipped alone, the torn or
	// damaged segment tails cut and the segments skipped, and
	// CorruptBytes the bytes skipped within segments.
	Corrupt      int
	CorruptBytes int64
	// Skipped holds an error for each segment that could not be opened or
	// read (a directory or a dangling link named like one, a file the
	// process may not open): it is left as it is, for a later start.
	Skipped []error
}

type entry struct {
	seg    uint64
	index  uint32
	off    int64
	size   int32
	spans  int32
	taken  bool // by this process
	resent bool
}

type segment struct {
	id       uint64
	log, jnl File
	info     os.FileInfo // of the open log, to tell whether its name still leads to it
	size     int64       // bytes of the log
	jnlSize  int64       // bytes of the journal's whole entries
	records  uint32      // records appended
	pending  int         // records not finished
	complete bool        // no more appends
}

// Spool is a disk spool. Its methods are safe for concurrent use.
type Spool struct {
	cfg      Config
	fs       FS
	lock     lockFile
	lockInfo os.FileInfo

	mu     sync.Mutex
	closed bool
	// lost is set once the directory vanished: the spool holds nothing
	// more and takes nothing.
	lost    error
	segs    map[uint64]*segment
	active  *segment
	nextID  uint64
	pending []entry // in order of age, oldest first; taken ones stay until finished
	// untaken counts the pending entries not taken, and diskUsed the bytes
	// of the segments: written under mu, read without it by Backlog and
	// DiskUsed, which must never wait behind a write or an fsync.
	untaken  atomic.Int64
	diskUsed atomic.Int64
	// named: segment files were created since the last Sync, whose
	// names the directory must make durable too.
	named bool
	spans int // in pending entries
}

// Open opens (creating it 0700 if needed) and locks the directory, and
// recovers what an earlier process left.
func Open(cfg Config) (*Spool, Recovery, error) {
	if cfg.FS == nil {
		cfg.FS = OS
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = DefaultSegmentBytes
	}
	s := &Spool{cfg: cfg, fs: cfg.FS, segs: map[uint64]*segment{}}
	var rec Recovery
	if err := s.fs.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, rec, fmt.Errorf("spool: %w", err)
	}
	lock, err := lockDir(s.fs, cfg.Dir)
	if err != nil {
		return nil, rec, err
	}
	s.lock = lock
	if s.lockInfo, err = lock.Stat(); err != nil {
		_ = lock.Close()
		return nil, rec, fmt.Errorf("spool: %w", err)
	}
	if err := s.recover(&rec); err != nil {
		_ = lock.Close()
		return nil, rec, err
	}
	return s, rec, nil
}

func (s *Spool) path(id uint64, ext string) string {
	return filepath.Join(s.cfg.Dir, fmt.Sprintf("%020d.%s", id, ext))
}

// recover reads every segment in the directory. A segment that cannot be
// opened or read is left as it is, counted and reported in rec: it does
// not keep the others from being recovered.
func (s *Spool) recover(rec *Recovery) error {
	des, err := s.fs.ReadDir(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	type found struct {
		id  uint64
		typ fs.FileMode
	}
	var segs []found
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ".log")
		if !ok {
			continue
		}
		if id, err := strconv.ParseUint(name, 10, 64); err == nil {
			segs = append(segs, found{id, de.Type()})
		}
	}
	slices.SortFunc(segs, func(a, b found) int { return cmp.Compare(a.id, b.id) })
	for _, f := range segs {
		s.nextID = f.id + 1
		if err := s.recoverSegment(f.id, f.typ, rec); err != nil {
			rec.Corrupt++
			rec.Skipped = append(rec.Skipped, err)
		}
	}
	return nil
}

// recoverSegment reads the segment id, whose directory entry is of type
// typ, and adds its unfinished records to the spool's, and what it found
// to rec; it adds nothing when it returns an error.
func (s *Spool) recoverSegment(id uint64, typ fs.FileMode, rec *Recovery) error {
	p := s.path(id, "log")
	// A symbolic link is followed, and what it leads to checked below;
	// anything else that is not a file is not opened (a FIFO could block).
	if typ&fs.ModeSymlink == 0 && !typ.IsRegular() {
		return fmt.Errorf("spool: %s is not a regular file (%v)", p, typ)
	}
	log, err := s.fs.OpenFile(p, os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	info, err := log.Stat()
	if err != nil {
		_ = log.Close()
		return fmt.Errorf("spool: %w", err)
	}
	if !info.Mode().IsRegular() {
		_ = log.Close()
		return fmt.Errorf("spool: %s is not a regular file (%v)", p, info.Mode().Type())
	}
	taken, done, whole := readJournal(s.fs, s.path(id, "jnl"))
	seg := &segment{id: id, log: log, info: info, complete: true}
	var got Recovery
	var ents []entry
	var off int64
	var hdr [headerSize]byte
	for off < info.Size() {
		size, spans, ok := readRecord(log, off, info.Size(), hdr[:])
		if !ok {
			if next, one := skipOne(log, off, info.Size(), hdr[:]); one {
				// A record whose own bytes are damaged, between sound
				// ones: it alone is lost, and it keeps its index so
				// that the journal's stay true for those after it.
				got.Corrupt++
				got.CorruptBytes += next - off
				seg.records++
				off = next
				continue
			}
			got.Corrupt++
			got.CorruptBytes += info.Size() - off
			break
		}
		idx := seg.records
		seg.records++
		if !done[idx] {
			e := entry{seg: id, index: idx, off: off + headerSize, size: int32(size), spans: int32(spans), resent: taken[idx]}
			ents = append(ents, e)
			got.Records++
			got.Spans += spans
			if e.resent {
				got.Resent += spans
			}
		}
		off += headerSize + int64(size)
	}
	seg.size = off
	if off < info.Size() {
		// Cut the torn tail so that the journal's indices stay true.
		_ = log.Truncate(off)
	}
	if len(ents) == 0 {
		_ = log.Close()
		s.removeSegment(seg)
		rec.Corrupt += got.Corrupt
		rec.CorruptBytes += got.CorruptBytes
		return nil
	}
	jnl, err := s.fs.OpenFile(s.path(id, "jnl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		_ = log.Close()
		return fmt.Errorf("spool: %w", err)
	}
	// Cut a torn last entry: the entries appended from now on must start
	// where a reader expects them, a whole number of entries in.
	if err := jnl.Truncate(whole); err != nil {
		_ = jnl.Close()
		_ = log.Close()
		return fmt.Errorf("spool: %w", err)
	}
	seg.jnl, seg.jnlSize = jnl, whole
	seg.pending = len(ents)
	s.segs[id] = seg
	s.diskUsed.Add(seg.size)
	s.pending = append(s.pending, ents...)
	s.untaken.Add(int64(len(ents)))
	s.spans += got.Spans
	rec.Records += got.Records
	rec.Spans += got.Spans
	rec.Resent += got.Resent
	rec.Corrupt += got.Corrupt
	rec.CorruptBytes += got.CorruptBytes
	return nil
}

// readRecord checks the record at off; ok is false for a torn or corrupt
// one.
func readRecord(f File, off, end int64, hdr []byte) (size, spans int, ok bool) {
	if end-off < headerSize {
		return 0, 0, false
	}
	if _, err := f.ReadAt(hdr, off); err != nil {
		return 0, 0, false
	}
	if binary.LittleEndian.Uint32(hdr[0:]) != magic {
		return 0, 0, false
	}
	size = int(binary.LittleEndian.Uint32(hdr[4:]))
	spans = int(binary.LittleEndian.Uint32(hdr[8:]))
	sum := binary.LittleEndian.Uint32(hdr[12:])
	if size > maxRecordBytes || int64(size) > end-off-headerSize {
		return 0, 0, false
	}
	payload := make([]byte, size)
	if _, err := f.ReadAt(payload, off+headerSize); err != nil {
		return 0, 0, false
	}
	if checksum(hdr[8:12], payload) != sum {
		return 0, 0, false
	}
	return size, spans, true
}

// skipOne reports whether the record at off, which failed its check, is
// damaged within its own bytes only: its header still has the magic and a
// length that ends it at the end of the file or where a sound record
// starts. next is then where the record after it begins. A torn tail, or
// damage to a length, makes the following records' places unknown.
func skipOne(f File, off, end int64, hdr []byte) (next int64, ok bool) {
	if end-off < headerSize {
		return 0, false
	}
	if _, err := f.ReadAt(hdr, off); err != nil || binary.LittleEndian.Uint32(hdr[0:]) != magic {
		return 0, false
	}
	size := int64(binary.LittleEndian.Uint32(hdr[4:]))
	next = off + headerSize + size
	if size > maxRecordBytes || next > end {
		return 0, false
	}
	if next == end {
		return next, true
	}
	var h [headerSize]byte
	_, _, sound := readRecord(f, next, end, h[:])
	return next, sound
}

func checksum(spans, payload []byte) uint32 {
	c := crc32.Update(0, crcTable, spans)
	return crc32.Update(c, crcTable, payload)
}

// readJournal reads which records were taken (and not put back unsent
// since) and finished, and returns the length of its whole entries. A
// torn last entry is ignored.
func readJournal(fs FS, path string) (taken, done map[uint32]bool, whole int64) {
	taken, done = map[uint32]bool{}, map[uint32]bool{}
	f, err := fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return taken, done, 0
	}
	defer f.Close()
	data, _ := io.ReadAll(io.NewSectionReader(f, 0, 1<<40))
	whole = int64(len(data) - len(data)%entrySize)
	taken, done = parseJournal(data)
	return taken, done, whole
}

// Append writes a record of spans spans. It returns ErrFull when the disk
// budget has no room, or the file system's error.
func (s *Spool) Append(payload []byte, spans int) error { return s.appendRecord(payload, spans, false) }

// AppendSent is Append for spans that were sent already and may have
// reached the backend without an answer: like a record taken and not
// finished, the next Open counts them as Resent, even if they are taken
// and put back meanwhile.
func (s *Spool) AppendSent(payload []byte, spans int) error {
	return s.appendRecord(payload, spans, true)
}

func (s *Spool) appendRecord(payload []byte, spans int, sent bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.writeLocked(payload, spans, 0)
	if err != nil {
		return err
	}
	if sent {
		e.resent = true
		s.journal(s.active, 'T', e.index)
	}
	s.pending = append(s.pending, e)
	s.untaken.Add(1)
	s.spans += spans
	return nil
}

// writeLocked writes a record of spans spans to the active segment,
// starting a new one if needed, and returns its entry, not yet pending.
// The disk budget may be exceeded by up to credit bytes.
func (s *Spool) writeLocked(payload []byte, spans int, credit int64) (entry, error) {
	if s.closed {
		return entry{}, ErrClosed
	}
	if s.lost != nil {
		return entry{}, s.lost
	}
	size := int64(headerSize + len(payload))
	if s.diskUsed.Load()+size > s.cfg.MaxBytes+credit {
		return entry{}, ErrFull
	}
	if s.active == nil || s.active.size+size > s.cfg.SegmentBytes && s.active.records > 0 {
		if err := s.rotate(); err != nil {
			return entry{}, err
		}
	}
	seg := s.active
	buf := make([]byte, headerSize, size)
	binary.LittleEndian.PutUint32(buf[0:], magic)
	binary.LittleEndian.PutUint32(buf[4:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[8:], uint32(spans))
	binary.LittleEndian.PutUint32(buf[12:], checksum(buf[8:12], payload))
	buf = append(buf, payload...)
	if _, err := seg.log.Write(buf); err != nil {
		// The segment's tail may now be torn: start a new one next time.
		seg.complete = true
		s.active = nil
		_ = seg.log.Truncate(seg.size)
		if seg.pending == 0 {
			s.removeSegmentLocked(seg)
		}
		return entry{}, fmt.Errorf("spool: %w", err)
	}
	e := entry{seg: seg.id, index: seg.records, off: seg.size + headerSize, size: int32(len(payload)), spans: int32(spans)}
	seg.records++
	seg.pending++
	seg.size += size
	s.diskUsed.Add(size)
	return e, nil
}

func (s *Spool) rotate() error {
	if s.active != nil {
		s.active.complete = true
		if s.active.pending == 0 {
			s.removeSegmentLocked(s.active)
		}
		s.active = nil
	}
	// Never a new segment in a directory that replaced the spool's: the
	// segments there are someone else's, and the spool's are gone.
	if lost := s.checkDirLocked(); lost != nil {
		return lost
	}
	id := s.nextID
	log, err := s.fs.OpenFile(s.path(id, "log"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	info, err := log.Stat()
	if err != nil {
		_ = log.Close()
		_ = s.fs.Remove(s.path(id, "log"))
		return fmt.Errorf("spool: %w", err)
	}
	// A journal of this name can only be left from a segment deleted
	// before it by a crash: its marks are not this segment's.
	jnl, err := s.fs.OpenFile(s.path(id, "jnl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		_ = log.Close()
		_ = s.fs.Remove(s.path(id, "log"))
		return fmt.Errorf("spool: %w", err)
	}
	s.nextID++
	s.named = true
	seg := &segment{id: id, log: log, jnl: jnl, info: info}
	s.segs[id] = seg
	s.active = seg
	return nil
}

// Next takes the oldest record not taken (the newest with newest set),
// reads and checks its payload, and notes in the journal that it was
// taken. ok is false when there is none. A record that fails its checksum
// on reading is finished and reported with its error.
func (s *Spool) Next(newest bool) (rec Record, payload []byte, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return rec, nil, false, nil
	}
	i := -1
	if newest {
		for j := len(s.pending) - 1; j >= 0; j-- {
			if !s.pending[j].taken {
				i = j
				break
			}
		}
	} else {
		for j := range s.pending {
			if !s.pending[j].taken {
				i = j
				break
			}
		}
	}
	if i < 0 {
		return rec, nil, false, nil
	}
	e := &s.pending[i]
	e.taken = true
	s.untaken.Add(-1)
	seg := s.segs[e.seg]
	rec = Record{seg: e.seg, index: e.index, Spans: int(e.spans), Resent: e.resent}
	payload = make([]byte, e.size)
	var hdr [headerSize]byte
	if _, rerr := seg.log.ReadAt(hdr[:], e.off-headerSize); rerr != nil {
		err = rerr
	} else if _, rerr := seg.log.ReadAt(payload, e.off); rerr != nil {
		err = rerr
	} else if checksum(hdr[8:12], payload) != binary.LittleEndian.Uint32(hdr[12:]) {
		err = errors.New("checksum mismatch")
	}
	if err != nil {
		s.finishLocked(rec)
		return rec, nil, true, fmt.Errorf("spool: record unreadable: %w", err)
	}
	s.journal(seg, 'T', e.index)
	return rec, payload, true, nil
}

// Return puts a taken record back, unfinished: it stays on disk and is
// taken again later, by this process or the next. sent says that it may
// have reached the backend (it was sent, and no answer said that it was
// not taken): it is then Resent when taken again, and so it stays. A
// record never sent, or only refused, is noted in the journal as put
// back, so that the next process does not count it among those that may
// arrive twice. It reports false when the spool no longer has the record:
// it was lost with its segment (see LostError), or the spool was closed.
func (s *Spool) Return(rec Record, sent bool) (kept bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	for i := range s.pending {
		if e := &s.pending[i]; e.seg == rec.seg && e.index == rec.index {
			if e.taken {
				s.untaken.Add(1)
			}
			e.taken = false
			if !sent && !e.resent {
				s.journal(s.segs[e.seg], 'R', e.index)
			}
			e.resent = e.resent || sent
			return true
		}
	}
	return false
}

// Replace puts back, in place of the taken record rec, what of it is
// still to be delivered: payload, an encoded request of spans spans, is
// written as a new record and rec is finished. It is for a record split on
// the way, some of whose spans were delivered (or dropped) and must not be
// sent again. sent says, as for Return, that the part may have reached the
// backend. The new record takes rec's place in the order of age, in this
// process; the next one finds it among the newest.
//
// The order on disk makes a crash cost duplicates, never spans: the new
// record is written, marked taken in its journal and made durable (fsync)
// before rec is marked finished. A crash between the two leaves both: the
// next Open recovers rec whole and the new record, and counts the spans of
// both Resent, since both were taken; the spans of the part are then sent
// twice, the others once more. Once rec is finished, the new record's mark
// is taken back ('R') if the part never reached the backend; a crash just
// before that only counts it Resent needlessly.
//
// The disk budget counts rec's bytes, which the new record replaces, as
// free: the disk used may exceed MaxBytes by up to the size of the largest
// record replaced. Past that, ErrFull.
//
// kept reports that the part is in the spool; err is then a failed fsync
// (the part may not survive a power loss). When kept is false, rec is
// finished or gone, and err says why the part is not kept: ErrFull, the
// file system's error, a *LostError or ErrClosed; or an error wrapping
// ErrVanished when rec itself was lost with its segment.
func (s *Spool) Replace(rec Record, payload []byte, spans int, sent bool) (kept bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, ErrClosed
	}
	i := slices.IndexFunc(s.pending, func(e entry) bool { return e.seg == rec.seg && e.index == rec.index })
	if i < 0 {
		return false, fmt.Errorf("%w: the record's segment is gone", ErrVanished)
	}
	old := s.pending[i]
	e, err := s.writeLocked(payload, spans, headerSize+int64(old.size))
	if err != nil {
		// Not sent whole again: what it holds was delivered in part. (A
		// vanished directory dropped it already, with every record.)
		s.finishLocked(rec)
		return false, err
	}
	seg := s.active
	e.taken, e.resent = false, old.resent || sent
	// Taken: until rec is finished, the part is on disk twice, and the
	// next Open must count it among the spans that may arrive twice.
	s.journal(seg, 'T', e.index)
	syncErr := s.syncActiveLocked()
	// In rec's place; rec was taken, the new record is not.
	s.pending[i] = e
	s.untaken.Add(1)
	s.spans += spans - int(old.spans)
	if oseg := s.segs[old.seg]; oseg != nil {
		oseg.pending--
		if oseg.pending == 0 {
			s.removeSegmentLocked(oseg)
		} else {
			s.journal(oseg, 'D', old.index)
		}
	}
	if !e.resent {
		s.journal(seg, 'R', e.index)
	}
	return true, syncErr
}

// Finish marks a taken record delivered or given up; a segment whose
// records are all finished is deleted.
func (s *Spool) Finish(rec Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishLocked(rec)
}

func (s *Spool) finishLocked(rec Record) {
	i := slices.IndexFunc(s.pending, func(e entry) bool { return e.seg == rec.seg && e.index == rec.index })
	if i < 0 {
		return
	}
	e := s.pending[i]
	s.pending = slices.Delete(s.pending, i, i+1)
	if !e.taken {
		s.untaken.Add(-1)
	}
	s.spans -= int(e.spans)
	seg := s.segs[e.seg]
	if seg == nil {
		return
	}
	seg.pending--
	if seg.pending == 0 {
		// Done with: the next Append starts a new segment.
		s.removeSegmentLocked(seg)
		return
	}
	s.journal(seg, 'D', e.index)
}

func (s *Spool) journal(seg *segment, op byte, index uint32) {
	if seg.jnl == nil {
		return
	}
	var b [entrySize]byte
	b[0] = op
	binary.LittleEndian.PutUint32(b[1:], index)
	if _, err := seg.jnl.Write(b[:]); err == nil {
		seg.jnlSize += entrySize
		return
	}
	// A failed write may leave the first bytes of the entry, which would
	// shift every entry after it: cut them. The mark itself is lost, as
	// to a crash; if the journal cannot be cut, it is written no more.
	if seg.jnl.Truncate(seg.jnlSize) != nil {
		_ = seg.jnl.Close()
		seg.jnl = nil
	}
}

func (s *Spool) removeSegment(seg *segment) {
	_ = s.fs.Remove(s.path(seg.id, "log"))
	_ = s.fs.Remove(s.path(seg.id, "jnl"))
}

func (s *Spool) removeSegmentLocked(seg *segment) {
	if seg.log != nil {
		_ = seg.log.Close()
	}
	if seg.jnl != nil {
		_ = seg.jnl.Close()
	}
	s.removeSegment(seg)
	delete(s.segs, seg.id)
	s.diskUsed.Add(-seg.size)
	if s.active == seg {
		s.active = nil
	}
}

// checkLocked checks that the directory, and each of segs in it, are
// still those the spool opened or created, by comparing what their names
// lead to now with the open files (which keep their identity: no other
// file can take it while they are open). What vanished is dropped from
// the spool and returned as lost; nil when nothing did.
func (s *Spool) checkLocked(segs []*segment) *LostError {
	if lost := s.checkDirLocked(); lost != nil {
		return lost
	}
	var gone []*segment
	for _, seg := range segs {
		if s.vanished(s.path(seg.id, "log"), seg.info) {
			gone = append(gone, seg)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	names := make([]string, len(gone))
	for i, seg := range gone {
		names[i] = filepath.Base(s.path(seg.id, "log"))
	}
	return s.loseLocked(gone, fmt.Errorf("%w: %s removed or replaced in %s", ErrVanished, strings.Join(names, ", "), s.cfg.Dir))
}

// checkDirLocked checks that the directory is still the spool's, by its
// LOCK file; if not, every segment is lost and the spool turned off.
func (s *Spool) checkDirLocked() *LostError {
	if !s.vanished(filepath.Join(s.cfg.Dir, "LOCK"), s.lockInfo) {
		return nil
	}
	s.lost = fmt.Errorf("%w: %s was removed or replaced", ErrVanished, s.cfg.Dir)
	return s.loseLocked(slices.Collect(maps.Values(s.segs)), s.lost)
}

// vanished reports whether name no longer leads to the file described by
// info. A name that cannot be looked up for another reason (permissions,
// I/O) is not taken for vanished: the file may still be there.
func (s *Spool) vanished(name string, info os.FileInfo) bool {
	now, err := s.fs.Stat(name)
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	return !os.SameFile(now, info)
}

// loseLocked drops segs, which vanished, from the spool: their files are
// closed, not removed (what their names now lead to is not the spool's),
// and their records forgotten. It returns those not taken as lost.
func (s *Spool) loseLocked(segs []*segment, cause error) *LostError {
	lost := &LostError{Err: cause}
	gone := map[uint64]bool{}
	for _, seg := range segs {
		gone[seg.id] = true
		_ = seg.log.Close()
		if seg.jnl != nil {
			_ = seg.jnl.Close()
		}
		delete(s.segs, seg.id)
		s.diskUsed.Add(-seg.size)
		if s.active == seg {
			s.active = nil
		}
	}
	kept := s.pending[:0]
	for _, e := range s.pending {
		if !gone[e.seg] {
			kept = append(kept, e)
			continue
		}
		if !e.taken {
			s.untaken.Add(-1)
			lost.Records++
			lost.Spans += int(e.spans)
		}
		s.spans -= int(e.spans)
	}
	clear(s.pending[len(kept):])
	s.pending = kept
	return lost
}

// Sync makes what was appended durable: the active segment's records,
// its journal, and the directory's entries for the segments created since
// the last Sync, without which a power loss could lose a new segment
// whole.
//
// It first checks that the directory, and the active segment in it, are
// still those the spool wrote: when they were removed or replaced, their
// records are lost, and it returns a *LostError; a directory that vanished
// turns the spool off.
func (s *Spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.lost != nil || len(s.segs) == 0 {
		return nil
	}
	var check []*segment
	if s.active != nil {
		check = append(check, s.active)
	}
	if lost := s.checkLocked(check); lost != nil {
		return lost
	}
	return s.syncActiveLocked()
}

// syncActiveLocked makes the active segment, its journal and the
// directory's entries for the segments created since the last sync
// durable.
func (s *Spool) syncActiveLocked() error {
	if s.active == nil {
		return nil
	}
	if err := s.active.log.Sync(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if s.active.jnl != nil {
		if err := s.active.jnl.Sync(); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	if s.named {
		dir, err := s.fs.OpenFile(s.cfg.Dir, os.O_RDONLY, 0)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		err = dir.Sync()
		if cerr := dir.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("spool: sync directory: %w", err)
		}
		s.named = false
	}
	return nil
}

// Usage reports the records and spans not finished, and the disk used.
func (s *Spool) Usage() (records, spans int, disk int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending), s.spans, s.diskUsed.Load()
}

// Backlog reports whether records wait to be taken. It never waits for
// the spool's lock, which a write or an fsync may hold.
func (s *Spool) Backlog() bool {
	return s.untaken.Load() > 0
}

// DiskUsed reports the disk the segments use. Like Backlog, it never
// waits for the spool's lock.
func (s *Spool) DiskUsed() int64 {
	return s.diskUsed.Load()
}

// Close syncs, closes the files and releases the lock. Unfinished records
// stay for the next Open. Every segment is checked first, as by Sync: the
// records of those that vanished are lost, and reported by a *LostError
// in the error returned.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	var errs []error
	if s.lost == nil && len(s.segs) > 0 {
		if lost := s.checkLocked(slices.Collect(maps.Values(s.segs))); lost != nil {
			errs = append(errs, lost)
		}
	}
	s.closed = true
	if s.active != nil {
		errs = append(errs, s.active.log.Sync())
	}
	for _, seg := range s.segs {
		if seg.jnl != nil {
			errs = append(errs, seg.jnl.Close())
		}
		errs = append(errs, seg.log.Close())
	}
	errs = append(errs, s.lock.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("spool: close: %w", err)
	}
	return nil
}

// parseJournal reads the whole entries of a journal: the records taken
// and not put back, and those finished. A torn last entry is ignored.
func parseJournal(data []byte) (taken, done map[uint32]bool) {
	taken, done = map[uint32]bool{}, map[uint32]bool{}
	for ; len(data) >= entrySize; data = data[entrySize:] {
		idx := binary.LittleEndian.Uint32(data[1:])
		switch data[0] {
		case 'T':
			taken[idx] = true
		case 'R':
			delete(taken, idx)
		case 'D':
			done[idx] = true
		}
	}
	return taken, done
}
