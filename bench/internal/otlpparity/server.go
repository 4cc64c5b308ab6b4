package otlpparity

import (
	"net/http/httptest"

	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

// Server is a loopback OTLP/HTTP receiver that answers 200 to every request
// and keeps its (decompressed) body and Content-Type: otlptest.Capture
// served on 127.0.0.1. Close it when done.
type Server struct {
	*httptest.Server
	capture otlptest.Capture
}

// NewServer starts a Server on 127.0.0.1.
func NewServer() *Server {
	s := &Server{}
	s.Server = httptest.NewServer(&s.capture)
	return s
}

// Take returns the bodies and Content-Types received since the last call.
func (s *Server) Take() (bodies [][]byte, contentTypes []string) { return s.capture.Take() }
