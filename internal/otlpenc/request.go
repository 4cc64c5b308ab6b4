package otlpenc

import "sync"

// maxPooledBody is the largest request buffer kept for reuse. Larger
// buffers, produced by unusually big batches without a size limit, are left
// to the garbage collector so that one burst does not pin its memory.
const maxPooledBody = 16 << 20

// keptRequests and maxKeptBody bound the released requests kept out of
// the garbage collector's reach: at most keptRequests buffers of at most
// maxKeptBody bytes each.
const (
	keptRequests = 8
	maxKeptBody  = 512 << 10
)

// requestPool hands out released requests: first those it keeps, then
// those of a sync.Pool. A sync.Pool is emptied by every second garbage
// collection, and a process that allocates fast collects tens of times a
// second: a pool alone would then hand out new buffers to grow span by
// span, and the encoder would allocate a batch's worth of memory for most
// batches. The few requests kept are the ones a steady stream of batches
// cycles through.
type requestPool struct {
	kept chan *Request
	p    sync.Pool
}

func (p *requestPool) get() *Request {
	select {
	case r := <-p.kept:
		return r
	default:
	}
	if r, ok := p.p.Get().(*Request); ok {
		return r
	}
	return new(Request)
}

func (p *requestPool) put(r *Request) {
	if cap(r.body) <= maxKeptBody {
		select {
		case p.kept <- r:
			return
		default:
		}
	}
	p.p.Put(r)
}

var requests = requestPool{kept: make(chan *Request, keptRequests)}

// Request is one encoded ExportTraceServiceRequest.
//
// Its buffer comes from a pool shared by all Encoders. Call Release once the
// request has been sent or dropped; neither the Request nor the slice returned
// by Bytes may be used after that.
type Request struct {
	body  []byte
	start int // the request is body[start:]
	spans int
}

// newRequest returns a pooled Request whose buffer holds at least n bytes
// and not much more: a request waiting in a queue holds about what it
// carries. A pooled buffer much larger goes back to the pool for a bigger
// request.
func newRequest(n int) *Request {
	r := requests.get()
	if c := cap(r.body); c > 2*n+minTrimmed {
		requests.put(r)
		r = new(Request)
	}
	if cap(r.body) < n {
		r.body = make([]byte, 0, n)
	}
	r.body, r.start = r.body[:0], 0
	return r
}

// Bytes returns the protobuf encoding of the request. The slice is owned by
// the Request and is valid until Release.
func (r *Request) Bytes() []byte { return r.body[r.start:] }

// Spans returns the number of spans in the request.
func (r *Request) Spans() int { return r.spans }

// Release returns the request's buffer to the pool. It must be called at
// most once; calling it on a nil Request does nothing.
func (r *Request) Release() {
	if r == nil {
		return
	}
	if cap(r.body) > maxPooledBody {
		r.body = nil
	} else {
		r.body = r.body[:0]
	}
	r.start, r.spans = 0, 0
	requests.put(r)
}
