package otlpenc

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

var (
	// ErrMalformed is returned for bytes that are not a well-formed
	// ExportTraceServiceRequest.
	ErrMalformed = errors.New("otlpenc: malformed request")
	// ErrTooFewSpans is returned by Split for a request that holds fewer
	// than two spans and so cannot be halved.
	ErrTooFewSpans = errors.New("otlpenc: request holds fewer than two spans")
)

// CountSpans returns the number of spans in an encoded
// ExportTraceServiceRequest. It checks the wire format of the request,
// ResourceSpans and ScopeSpans levels; span messages themselves are counted,
// not decoded.
func CountSpans(body []byte) (int, error) {
	n := 0
	err := walkRequest(body, func(*part) {}, func(*part) {}, func([]byte) { n++ })
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Split halves an encoded ExportTraceServiceRequest, for a retry after the
// server refused it as too large (HTTP 413, gRPC ResourceExhausted). a holds
// the first half of the spans (the larger half when their number is odd),
// b the rest, each under copies of their resource and scope envelopes;
// spans keep their order. It returns ErrTooFewSpans for fewer than two
// spans and an error wrapping ErrMalformed for bytes it cannot parse. a and
// b are newly allocated.
func Split(body []byte) (a, b []byte, err error) {
	var (
		resources []*part
		cur       *part
		total     int
	)
	err = walkRequest(body,
		func(rs *part) { resources = append(resources, rs) },
		func(ss *part) {
			rs := resources[len(resources)-1]
			rs.children = append(rs.children, ss)
			cur = ss
		},
		func(span []byte) { cur.spans = append(cur.spans, span); total++ },
	)
	if err != nil {
		return nil, nil, err
	}
	if total < 2 {
		return nil, nil, ErrTooFewSpans
	}
	half := total - total/2
	return assemble(resources, 0, half), assemble(resources, half, total), nil
}

// part is a ResourceSpans or ScopeSpans message taken apart: its fields
// other than the repeated child field, as raw bytes, split into those
// numbered below the child field (lo) and above it (hi), and its children.
type part struct {
	lo, hi   []byte
	children []*part  // ScopeSpans of a ResourceSpans
	spans    [][]byte // Span messages of a ScopeSpans
}

// walkRequest parses body down to the span level, calling onResource for
// each ResourceSpans, onScope for each of its ScopeSpans and onSpan for each
// span, in order. The parts are complete only once walkRequest returns.
func walkRequest(body []byte, onResource, onScope func(*part), onSpan func([]byte)) error {
	return walkFields(body, "request", func(num protowire.Number, typ protowire.Type, _, rsMsg []byte) error {
		if num != 1 {
			return nil // not ours; dropped
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("%w: resource_spans has wire type %d", ErrMalformed, typ)
		}
		rs := &part{}
		onResource(rs)
		return walkFields(rsMsg, "resource_spans", func(num protowire.Number, typ protowire.Type, field, ssMsg []byte) error {
			if num != 2 {
				rs.keep(num, field)
				return nil
			}
			if typ != protowire.BytesType {
				return fmt.Errorf("%w: scope_spans has wire type %d", ErrMalformed, typ)
			}
			ss := &part{}
			onScope(ss)
			return walkFields(ssMsg, "scope_spans", func(num protowire.Number, typ protowire.Type, field, span []byte) error {
				if num != 2 {
					ss.keep(num, field)
					return nil
				}
				if typ != protowire.BytesType {
					return fmt.Errorf("%w: span has wire type %d", ErrMalformed, typ)
				}
				onSpan(span)
				return nil
			})
		})
	})
}

func (p *part) keep(num protowire.Number, field []byte) {
	if num < 2 {
		p.lo = append(p.lo, field...)
	} else {
		p.hi = append(p.hi, field...)
	}
}

// walkFields calls fn with the number, wire type, raw bytes and (for
// length-delimited fields) payload of every field of msg.
func walkFields(msg []byte, what string, fn func(num protowire.Number, typ protowire.Type, field, value []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return fmt.Errorf("%w: %s: %w", ErrMalformed, what, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[n:])
		if m < 0 {
			return fmt.Errorf("%w: %s field %d: %w", ErrMalformed, what, num, protowire.ParseError(m))
		}
		field, value := msg[:n+m], []byte(nil)
		if typ == protowire.BytesType {
			value, _ = protowire.ConsumeBytes(msg[n:])
		}
		if err := fn(num, typ, field, value); err != nil {
			return err
		}
		msg = msg[n+m:]
	}
	return nil
}

// assemble encodes a request holding spans [from, to) of resources, counted
// across the whole request, with their envelopes. Envelopes left without
// spans are left out.
func assemble(resources []*part, from, to int) []byte {
	total, first := 0, 0
	for _, rs := range resources {
		n := rs.spanCount()
		if overlaps(first, first+n, from, to) {
			total += sizeLen(rs.bodyLen(first, from, to))
		}
		first += n
	}
	b := make([]byte, 0, total)
	first = 0
	for _, rs := range resources {
		n := rs.spanCount()
		if !overlaps(first, first+n, from, to) {
			first += n
			continue
		}
		b = appendLen(b, tagRequestResourceSpans, rs.bodyLen(first, from, to))
		b = append(b, rs.lo...)
		for _, ss := range rs.children {
			n := len(ss.spans)
			if overlaps(first, first+n, from, to) {
				b = appendLen(b, tagRSScopeSpans, ss.bodyLen(first, from, to))
				b = append(b, ss.lo...)
				for k, span := range ss.spans {
					if i := first + k; i >= from && i < to {
						b = appendLen(b, tagSSSpans, len(span))
						b = append(b, span...)
					}
				}
				b = append(b, ss.hi...)
			}
			first += n
		}
		b = append(b, rs.hi...)
	}
	return b
}

// spanCount returns the number of spans under p.
func (p *part) spanCount() int {
	n := len(p.spans)
	for _, c := range p.children {
		n += len(c.spans)
	}
	return n
}

// bodyLen returns the length of p's message holding only its spans in
// [from, to), where first is the index of p's first span.
func (p *part) bodyLen(first, from, to int) int {
	n := len(p.lo) + len(p.hi)
	for k, span := range p.spans {
		if i := first + k; i >= from && i < to {
			n += sizeLen(len(span))
		}
	}
	for _, c := range p.children {
		m := c.spanCount()
		if overlaps(first, first+m, from, to) {
			n += sizeLen(c.bodyLen(first, from, to))
		}
		first += m
	}
	return n
}

// overlaps reports whether the span ranges [i, j) and [from, to) share a
// span.
func overlaps(i, j, from, to int) bool { return i < j && i < to && j > from }
