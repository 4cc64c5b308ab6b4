package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Where Jaeger listens; .ci/jaeger's configuration uses these ports.
var (
	queryURL = os.Getenv("JAEGER_QUERY_URL") // e.g. http://127.0.0.1:16686
	otlpHTTP = envOr("JAEGER_OTLP_HTTP_URL", "http://127.0.0.1:14318")
	otlpGRPC = envOr("JAEGER_OTLP_GRPC_URL", "http://127.0.0.1:14317")
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// jaegerTrace is what /api/traces/{id} returns of a trace.
type jaegerTrace struct {
	TraceID   string `json:"traceID"`
	Spans     []jaegerSpan
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

type jaegerSpan struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	Logs []struct {
		Fields []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"fields"`
	} `json:"logs"`
	ProcessID string `json:"processID"`
}

func (s jaegerSpan) tag(key string) (any, bool) {
	for _, t := range s.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return nil, false
}

func (s jaegerSpan) events() []string {
	var out []string
	for _, l := range s.Logs {
		for _, f := range l.Fields {
			if f.Key == "event" {
				out = append(out, fmt.Sprint(f.Value))
			}
		}
	}
	return out
}

func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// sent is one request the example reports: its trace and HTTP status.
type sent struct {
	traceID string
	status  int
}

func TestJaegerReadsBackEveryTrace(t *testing.T) {
	if queryURL == "" {
		t.Skip("Jaeger is not running: start it with .ci/jaeger start and set JAEGER_QUERY_URL=http://127.0.0.1:16686")
	}
	if resp, err := http.Get(queryURL + "/api/services"); err != nil {
		t.Skipf("Jaeger is not reachable at JAEGER_QUERY_URL=%s: %v", queryURL, err)
	} else {
		resp.Body.Close()
	}
	bin := buildExample(t)
	const requests = 12
	for _, tc := range []struct{ protocol, endpoint string }{
		{"http/protobuf", otlpHTTP},
		{"http/json", otlpHTTP},
		{"grpc", otlpGRPC},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			service := fmt.Sprintf("e2e-%s-%d", strings.ReplaceAll(tc.protocol, "/", "-"), time.Now().UnixNano())
			reqs := runExample(t, bin, requests, service,
				"OTEL_EXPORTER_OTLP_PROTOCOL="+tc.protocol, "OTEL_EXPORTER_OTLP_ENDPOINT="+tc.endpoint)
			if len(reqs) != requests {
				t.Fatalf("the example reported %d requests, want %d", len(reqs), requests)
			}
			spans := 0
			for i, r := range reqs {
				tr := readTrace(t, r.traceID, 4)
				var previous string
				if i > 0 {
					previous = reqs[i-1].traceID
				}
				checkTrace(t, tr, i+1, r, previous, service)
				spans += len(tr.Spans)
			}
			t.Logf("%s: read back %d traces, %d spans, from Jaeger", tc.protocol, len(reqs), spans)
		})
	}
}

// checkTrace checks the four spans of request number n: names, parents,
// attributes, status, events, the link to the previous request, and the
// service name.
func checkTrace(t *testing.T, tr jaegerTrace, n int, r sent, previousTrace, service string) {
	t.Helper()
	byName := map[string]jaegerSpan{}
	for _, s := range tr.Spans {
		byName[s.OperationName] = s
		if got := tr.Processes[s.ProcessID].ServiceName; got != service {
			t.Errorf("trace %s: span %q has service %q, want %q", tr.TraceID, s.OperationName, got, service)
		}
	}
	root, client, server, load := byName["checkout"], byName["HTTP GET"], byName["GET /orders/{id}"], byName["load order"]
	if len(byName) != 4 || root.SpanID == "" || client.SpanID == "" || server.SpanID == "" || load.SpanID == "" {
		t.Fatalf("trace %s: spans %v, want checkout, HTTP GET, GET /orders/{id}, load order", tr.TraceID, names(tr))
	}
	// Parents.
	if root.parent() != "" || client.parent() != root.SpanID || server.parent() != client.SpanID || load.parent() != server.SpanID {
		t.Errorf("trace %s: parents broken: checkout←%q, HTTP GET←%q, server←%q, load←%q",
			tr.TraceID, root.parent(), client.parent(), server.parent(), load.parent())
	}
	// Attributes.
	for _, c := range []struct {
		span jaegerSpan
		key  string
		want any
	}{
		{root, "order.number", float64(n)},
		{load, "order.id", float64(n)},
		{load, "db.system.name", "postgresql"},
		{server, "http.route", "/orders/{id}"},
		{server, "span.kind", "server"},
		{client, "span.kind", "client"},
	} {
		if got, ok := c.span.tag(c.key); !ok || got != c.want {
			t.Errorf("trace %s: %s %s = %v, want %v", tr.TraceID, c.span.OperationName, c.key, got, c.want)
		}
	}
	// Status: one request in four fails.
	failed := n%4 == 0
	if (r.status == 500) != failed {
		t.Errorf("request %d answered %d", n, r.status)
	}
	for _, s := range []jaegerSpan{root, server, load} {
		code, _ := s.tag("otel.status_code")
		if failed != (code == "ERROR") {
			t.Errorf("trace %s: %s otel.status_code %v, failed %v", tr.TraceID, s.OperationName, code, failed)
		}
	}
	// Events.
	ev := strings.Join(load.events(), ",")
	want := ""
	if n%2 == 1 {
		want = "cache miss"
	}
	if failed {
		want = "exception"
	}
	if ev != want {
		t.Errorf("trace %s: load order events %q, want %q", tr.TraceID, ev, want)
	}
	// The link to the previous request's root.
	var links []string
	for _, ref := range root.References {
		if ref.RefType == "FOLLOWS_FROM" {
			links = append(links, ref.TraceID)
		}
	}
	if previousTrace == "" && len(links) != 0 || previousTrace != "" && (len(links) != 1 || links[0] != previousTrace) {
		t.Errorf("trace %s: links to %v, want %q", tr.TraceID, links, previousTrace)
	}
}

func names(tr jaegerTrace) []string {
	var out []string
	for _, s := range tr.Spans {
		out = append(out, s.OperationName)
	}
	return out
}

// readTrace polls Jaeger, within a bound, until the trace has want spans:
// Jaeger batches what it receives before storing it.
func readTrace(t *testing.T, id string, want int) jaegerTrace {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for {
		resp, err := http.Get(queryURL + "/api/traces/" + id)
		if err == nil {
			var body struct{ Data []jaegerTrace }
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err == nil && len(body.Data) == 1 && len(body.Data[0].Spans) >= want {
				return body.Data[0]
			}
			last = fmt.Sprintf("%s, %d traces", resp.Status, len(body.Data))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s not in Jaeger with %d spans after 30s (last: %s)", id, want, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func buildExample(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "otelhttp")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./otelhttp")
	cmd.Dir = filepath.Join("..", "examples")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the example: %v\n%s", err, out)
	}
	return bin
}

// runExample runs the otelhttp example with the standard environment
// variables and returns the requests it reports.
func runExample(t *testing.T, bin string, requests int, service string, env ...string) []sent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-requests", strconv.Itoa(requests))
	cmd.Env = append(os.Environ(), append(env, "OTEL_SERVICE_NAME="+service, "OTEL_TRACES_SAMPLER_ARG=1")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("example: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("%d spans exported, 0 dropped", 4*requests)) {
		t.Fatalf("the example did not export every span:\n%s", stderr.String())
	}
	var reqs []sent
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "trace" {
			t.Fatalf("unexpected output line %q", sc.Text())
		}
		status, _ := strconv.Atoi(f[2])
		reqs = append(reqs, sent{f[1], status})
	}
	return reqs
}
