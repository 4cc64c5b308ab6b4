package queue_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/tracekeeper/tracekeeper/queue"
)

// A producer hands over encoded batches without waiting and counts what the
// queue refuses; a consumer coalesces the queued batches into requests of at
// most six spans.
func Example() {
	// Room for 10 spans or 1 KiB, whichever runs out first.
	q := queue.New[string](10, 1024)

	var dropped int
	for _, batch := range []string{"a", "bb", "ccc", "dddd", "eeeee"} {
		spans := len(batch)
		if err := q.TryPut(batch, spans, int64(spans)*100); err != nil {
			dropped += spans // count the drop and move on
		}
	}
	q.Close() // no more batches; what is queued can still be taken

	var buf []string
	for {
		req, spans, bytes, err := q.Take(context.Background(), buf, 6, 0)
		if errors.Is(err, queue.ErrClosed) {
			break
		}
		fmt.Printf("request %v: %d spans, %d bytes\n", req, spans, bytes)
		buf = req
	}
	fmt.Println("dropped spans:", dropped)
	// Output:
	// request [a bb ccc]: 6 spans, 600 bytes
	// request [dddd]: 4 spans, 400 bytes
	// dropped spans: 5
}

// TryPut tells apart an entry that does not fit now from one that never
// will, and a closed queue.
func ExampleQueue_TryPut() {
	q := queue.New[string](4, 0) // bounded by items only

	for _, spans := range []int{3, 2, 5} {
		err := q.TryPut("batch", spans, 0)
		switch {
		case errors.Is(err, queue.ErrTooLarge):
			fmt.Println(spans, "spans: too large for the queue")
		case errors.Is(err, queue.ErrFull):
			fmt.Println(spans, "spans: full, try later or drop")
		case err != nil:
			fmt.Println(spans, "spans:", err)
		default:
			fmt.Println(spans, "spans: queued")
		}
	}
	q.Close()
	fmt.Println(q.TryPut("batch", 1, 0))
	// Output:
	// 3 spans: queued
	// 2 spans: full, try later or drop
	// 5 spans: too large for the queue
	// queue: closed
}

// Drain counts what is left when a shutdown runs out of time.
func ExampleQueue_Drain() {
	q := queue.New[[]byte](100, 1<<20)
	_ = q.TryPut(make([]byte, 300), 3, 300)
	_ = q.TryPut(make([]byte, 500), 5, 500)

	q.Close()
	left := q.Drain(nil)
	fmt.Println(len(left), "requests not sent; queue now holds", q.Items(), "spans")
	// Output:
	// 2 requests not sent; queue now holds 0 spans
}
