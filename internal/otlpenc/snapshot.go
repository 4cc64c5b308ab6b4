package otlpenc

import "github.com/tracekeeper/tracekeeper/internal/mirror"

// spanData is what the encoder reads from a span: an SDK snapshot in
// place (mirror.SpanOf), or any other span read through its methods
// (mirror.ReadSpan).
type spanData = mirror.Span
