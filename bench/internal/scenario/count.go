package scenario

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the OTLP trace messages that lead to spans.
const (
	fieldRequestResourceSpans protowire.Number = 1 // ExportTraceServiceRequest.resource_spans
	fieldResourceScopeSpans   protowire.Number = 2 // ResourceSpans.scope_spans
	fieldScopeSpans           protowire.Number = 2 // ScopeSpans.spans
)

// CountSpans counts the spans of an encoded ExportTraceServiceRequest by
// walking its wire format down to the span messages, without decoding the
// spans themselves. It returns an error for a message that is not valid
// protobuf down to that depth. Whenever proto.Unmarshal accepts the
// message, CountSpans agrees with the number of spans it decodes.
func CountSpans(body []byte) (int, error) {
	n := 0
	err := eachField(body, fieldRequestResourceSpans, func(rs []byte) error {
		return eachField(rs, fieldResourceScopeSpans, func(ss []byte) error {
			return eachField(ss, fieldScopeSpans, func([]byte) error {
				n++
				return nil
			})
		})
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// eachField calls fn with the payload of every length-delimited field
// numbered want in msg, and checks that every other field is well formed.
func eachField(msg []byte, want protowire.Number, fn func([]byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return fmt.Errorf("scenario: bad field tag: %w", protowire.ParseError(n))
		}
		msg = msg[n:]
		if num == want && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(msg)
			if m < 0 {
				return fmt.Errorf("scenario: field %d: %w", num, protowire.ParseError(m))
			}
			if err := fn(v); err != nil {
				return err
			}
			msg = msg[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, msg)
		if m < 0 {
			return fmt.Errorf("scenario: field %d: %w", num, protowire.ParseError(m))
		}
		msg = msg[m:]
	}
	return nil
}
