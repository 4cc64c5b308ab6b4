package queue

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// The benchmarks compare Queue with what it replaces: a buffered channel of
// entries with an atomic byte budget. The channel bounds entries rather than
// items, and its consumer cannot look at the next entry before taking it, so
// it carries an entry that overstepped a batch over to its next batch.

const (
	benchEntries = 1024    // capacity in entries (channel) and items (queue)
	benchBytes   = 1 << 20 // byte budget for both
	entryBytes   = 300     // bytes per entry, about one encoded span
)

type chanQueue struct {
	ch       chan entry[int]
	bytes    atomic.Int64
	maxBytes int64
}

func newChanQueue(entries int, maxBytes int64) *chanQueue {
	return &chanQueue{ch: make(chan entry[int], entries), maxBytes: maxBytes}
}

func (c *chanQueue) tryPut(v, items int, bytes int64) bool {
	if c.bytes.Add(bytes) > c.maxBytes {
		c.bytes.Add(-bytes)
		return false
	}
	select {
	case c.ch <- entry[int]{v: v, items: items, bytes: bytes}:
		return true
	default:
		c.bytes.Add(-bytes)
		return false
	}
}

// put waits for room in the channel; the byte budget is not waited on.
func (c *chanQueue) put(v, items int, bytes int64) {
	c.bytes.Add(bytes)
	c.ch <- entry[int]{v: v, items: items, bytes: bytes}
}

// chanConsumer takes batches from a chanQueue.
type chanConsumer struct {
	q     *chanQueue
	carry entry[int]
	has   bool
}

// take waits for one entry, then adds entries that are ready while they fit
// within maxItems. It reports false once the channel is closed and empty.
func (c *chanConsumer) take(dst []int, maxItems int) ([]int, bool) {
	dst = dst[:0]
	first := c.carry
	if !c.has {
		var ok bool
		if first, ok = <-c.q.ch; !ok {
			return dst, false
		}
	}
	c.has = false
	dst = append(dst, first.v)
	items, bytes := first.items, first.bytes
	for {
		select {
		case e, ok := <-c.q.ch:
			if !ok {
				c.q.bytes.Add(-bytes)
				return dst, true
			}
			if items+e.items > maxItems {
				c.carry, c.has = e, true
				c.q.bytes.Add(-bytes)
				return dst, true
			}
			dst = append(dst, e.v)
			items += e.items
			bytes += e.bytes
		default:
			c.q.bytes.Add(-bytes)
			return dst, true
		}
	}
}

func BenchmarkTryPutTake(b *testing.B) {
	ctx := context.Background()
	for _, batch := range []int{1, 8} {
		name := map[int]string{1: "one", 8: "eight"}[batch]
		b.Run("queue/"+name, func(b *testing.B) {
			q := New[int](benchEntries, benchBytes)
			dst := make([]int, 0, batch)
			b.ReportAllocs()
			for b.Loop() {
				for i := range batch {
					if err := q.TryPut(i, 1, entryBytes); err != nil {
						b.Fatal(err)
					}
				}
				dst, _, _, _ = q.Take(ctx, dst, batch, 0)
			}
		})
		b.Run("chan/"+name, func(b *testing.B) {
			c := &chanConsumer{q: newChanQueue(benchEntries, benchBytes)}
			dst := make([]int, 0, batch)
			b.ReportAllocs()
			for b.Loop() {
				for i := range batch {
					if !c.q.tryPut(i, 1, entryBytes) {
						b.Fatal("refused")
					}
				}
				dst, _ = c.take(dst, batch)
			}
		})
	}
}

// BenchmarkParallelTryPut runs GOMAXPROCS producers calling TryPut while two
// consumers take batches of up to 64 items. A producer that is refused yields
// and tries again, so ns/op is the cost of one delivered entry and full/op
// counts the refusals met on the way.
func BenchmarkParallelTryPut(b *testing.B) {
	const consumers, batch = 2, 64
	b.Run("queue", func(b *testing.B) {
		q := New[int](benchEntries, benchBytes)
		var wg sync.WaitGroup
		for range consumers {
			wg.Go(func() {
				dst := make([]int, 0, batch)
				var err error
				for err == nil {
					dst, _, _, err = q.Take(context.Background(), dst, batch, 0)
				}
			})
		}
		var full atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				for q.TryPut(i, 1, entryBytes) != nil {
					full.Add(1)
					runtime.Gosched()
				}
			}
		})
		b.StopTimer()
		q.Close()
		wg.Wait()
		b.ReportMetric(float64(full.Load())/float64(b.N), "full/op")
	})
	b.Run("chan", func(b *testing.B) {
		cq := newChanQueue(benchEntries, benchBytes)
		var wg sync.WaitGroup
		for range consumers {
			wg.Go(func() {
				c := &chanConsumer{q: cq}
				dst := make([]int, 0, batch)
				ok := true
				for ok {
					dst, ok = c.take(dst, batch)
				}
			})
		}
		var full atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				for !cq.tryPut(i, 1, entryBytes) {
					full.Add(1)
					runtime.Gosched()
				}
			}
		})
		b.StopTimer()
		close(cq.ch)
		wg.Wait()
		b.ReportMetric(float64(full.Load())/float64(b.N), "full/op")
	})
}

// BenchmarkHandoff has one producer and one consumer that waits on an empty
// queue, so that every entry wakes a parked consumer: the path an idle
// exporter takes for each batch.
func BenchmarkHandoff(b *testing.B) {
	ctx := context.Background()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{{"queue", ctx}, {"queue/cancellable", cctx}} {
		b.Run(c.name, func(b *testing.B) {
			benchHandoff(b, c.ctx)
		})
	}
	b.Run("chan", func(b *testing.B) {
		cq := newChanQueue(benchEntries, benchBytes)
		ack := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			c := &chanConsumer{q: cq}
			var dst []int
			ok := true
			for {
				if dst, ok = c.take(dst, 1<<30); !ok {
					return
				}
				ack <- struct{}{}
			}
		})
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if !cq.tryPut(i, 1, entryBytes) {
				b.Fatal("refused")
			}
			<-ack
		}
		close(cq.ch)
		wg.Wait()
	})
}

// benchHandoff is BenchmarkHandoff for Queue with the consumer's context.
func benchHandoff(b *testing.B, ctx context.Context) {
	q := New[int](benchEntries, benchBytes)
	ack := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var dst []int
		var err error
		for {
			if dst, _, _, err = q.Take(ctx, dst, 0, 0); err != nil {
				return
			}
			ack <- struct{}{}
		}
	})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := q.TryPut(i, 1, entryBytes); err != nil {
			b.Fatal(err)
		}
		<-ack
	}
	q.Close()
	wg.Wait()
}

// BenchmarkParallelPut is the opt-in blocking mode: producers wait for room
// in a small queue, so most puts park and are admitted by a consumer.
func BenchmarkParallelPut(b *testing.B) {
	const consumers, batch, size = 2, 16, 32
	ctx := context.Background()
	b.Run("queue", func(b *testing.B) {
		q := New[int](size, benchBytes)
		var wg sync.WaitGroup
		for range consumers {
			wg.Go(func() {
				dst := make([]int, 0, batch)
				var err error
				for err == nil {
					dst, _, _, err = q.Take(ctx, dst, batch, 0)
				}
			})
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if err := q.Put(ctx, i, 1, entryBytes); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		q.Close()
		wg.Wait()
	})
	b.Run("chan", func(b *testing.B) {
		cq := newChanQueue(size, benchBytes)
		var wg sync.WaitGroup
		for range consumers {
			wg.Go(func() {
				c := &chanConsumer{q: cq}
				dst := make([]int, 0, batch)
				ok := true
				for ok {
					dst, ok = c.take(dst, batch)
				}
			})
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				cq.put(i, 1, entryBytes)
			}
		})
		b.StopTimer()
		close(cq.ch)
		wg.Wait()
	})
}
