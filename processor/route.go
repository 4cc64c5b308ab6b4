package processor

import (
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys of the HTTP semantic conventions that name server spans.
const (
	keyHTTPRoute  attribute.Key = "http.route"
	keyHTTPMethod attribute.Key = "http.request.method"
	// otherMethod is the value of http.request.method for a method the
	// instrumentation does not know; such spans are named "HTTP".
	otherMethod = "_OTHER"
)

// maxRouteNames bounds the span names a routeNames keeps, and
// maxRouteName the length of each, so that it holds at most
// maxRouteNames × maxRouteName bytes of names whatever the routes. A
// renamed span whose name is not kept costs one allocation for its name.
const (
	maxRouteNames = 1024
	maxRouteName  = 128
)

// routeNames builds the names of HTTP server spans from their method and
// route, "GET /users/{id}", and keeps the names it built of up to
// maxRouteName bytes, so that renaming a span costs no allocation once its
// name has been seen: lookups read an immutable map through an atomic
// pointer, and a new name copies the map under the mutex. The zero value
// is ready to use.
type routeNames struct {
	m  atomic.Pointer[map[string]string]
	mu sync.Mutex
}

// name returns the span name the semantic conventions give a span of kind
// with attrs, or name itself when they give none: the span is not a server
// span or has no non-empty string http.route.
func (r *routeNames) name(kind trace.SpanKind, attrs []attribute.KeyValue, name string) string {
	if kind != trace.SpanKindServer {
		return name
	}
	var method, route string
	for i := range attrs {
		kv := &attrs[i]
		if kv.Value.Type() != attribute.STRING {
			continue
		}
		switch kv.Key {
		case keyHTTPRoute:
			route = kv.Value.AsString()
		case keyHTTPMethod:
			method = kv.Value.AsString()
		}
	}
	if route == "" {
		return name
	}
	if method == "" || method == otherMethod {
		method = "HTTP"
	}
	if len(name) == len(method)+1+len(route) && name[:len(method)] == method &&
		name[len(method)] == ' ' && name[len(method)+1:] == route {
		return name
	}
	if len(method)+1+len(route) > maxRouteName {
		return method + " " + route
	}
	var buf [maxRouteName]byte
	b := append(append(append(buf[:0], method...), ' '), route...)
	if m := r.m.Load(); m != nil {
		if v, ok := (*m)[string(b)]; ok { // indexing with string(b) does not allocate
			return v
		}
	}
	return r.add(string(b))
}

// add keeps v, if there is room, and returns it.
func (r *routeNames) add(v string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var old map[string]string
	if p := r.m.Load(); p != nil {
		old = *p
	}
	if c, ok := old[v]; ok {
		return c
	}
	if len(old) >= maxRouteNames {
		return v
	}
	m := make(map[string]string, len(old)+1)
	for k, c := range old {
		m[k] = c
	}
	m[v] = v
	r.m.Store(&m)
	return v
}
