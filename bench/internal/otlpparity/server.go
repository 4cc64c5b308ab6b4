package otlpparity

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
)

// Server is a loopback OTLP/HTTP receiver that answers 200 to every request
// and keeps its body and Content-Type. Close it when done.
type Server struct {
	*httptest.Server

	mu     sync.Mutex
	bodies [][]byte
	types  []string
}

// NewServer starts a Server on 127.0.0.1.
func NewServer() *Server {
	s := &Server{}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	return s
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.bodies = append(s.bodies, body)
	s.types = append(s.types, r.Header.Get("Content-Type"))
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// Take returns the bodies and Content-Types received since the last call.
func (s *Server) Take() (bodies [][]byte, contentTypes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	bodies, contentTypes = s.bodies, s.types
	s.bodies, s.types = nil, nil
	return bodies, contentTypes
}
