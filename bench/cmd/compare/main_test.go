package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tracekeeper/tracekeeper/bench/internal/scenario"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestPickScenarios(t *testing.T) {
	tests := []struct {
		name    string
		list    string
		want    []string
		wantErr bool
	}{
		{"all", "all", []string{"latency-0ms", "latency-20ms", "latency-100ms", "latency-500ms", "latency-1s", "outage-503", "outage-refused", "overload-4"}, false},
		{"empty means all", "", []string{"latency-0ms", "latency-20ms", "latency-100ms", "latency-500ms", "latency-1s", "outage-503", "outage-refused", "overload-4"}, false},
		{"some, in the given order", "outage-503, latency-0ms", []string{"outage-503", "latency-0ms"}, false},
		{"unknown", "latency-5ms", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pickScenarios(options{duration: time.Second, outage: time.Second, scenarios: tt.list})
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if strings.Join(names(got), ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %v, want %v", names(got), tt.want)
			}
		})
	}
}

func TestPickPipelines(t *testing.T) {
	tests := []struct {
		list    string
		want    []scenario.Kind
		wantErr bool
	}{
		{"stock,tracekeeper", []scenario.Kind{scenario.Stock, scenario.Ours}, false},
		{"ours", []scenario.Kind{scenario.Ours}, false},
		{"batch", nil, true},
	}
	for _, tt := range tests {
		got, err := pickPipelines(tt.list)
		if (err != nil) != tt.wantErr || len(got) != len(tt.want) {
			t.Errorf("pickPipelines(%q) = %v, %v; want %v", tt.list, got, err, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("pickPipelines(%q) = %v, want %v", tt.list, got, tt.want)
			}
		}
	}
}

func TestIsBenchModule(t *testing.T) {
	dir := t.TempDir()
	if isBenchModule(dir) {
		t.Error("a directory without go.mod is the bench module")
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if isBenchModule(dir) {
		t.Error("another module is the bench module")
	}
	if !isBenchModule("../..") {
		t.Error("the bench module's own directory is not recognised")
	}
}

// TestRun runs a very short comparison end to end and checks that it
// prints the table and writes both files.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	svg, md := filepath.Join(dir, "out", "c.svg"), filepath.Join(dir, "out", "c.md")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{
		"-duration", "300ms", "-outage", "100ms", "-rate", "5000",
		"-scenarios", "latency-20ms,outage-refused", "-svg", svg, "-md", md,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"latency-20ms", "outage-refused", "delivered stock", "tracekeeper-spool", "peak on disk", "wrote " + svg} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	// The outage also runs ours with a spool: five runs.
	if !strings.Contains(stderr.String(), "[ 5/5]") {
		t.Errorf("progress lacks the last run:\n%s", stderr.String())
	}
	page, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "](c.svg)") {
		t.Errorf("the page does not show the chart:\n%s", page)
	}
	if _, err := os.Stat(svg); err != nil {
		t.Error(err)
	}
}

// TestRunReadme runs a short comparison with the overload scenario and
// -readme, and checks that the README's block was rewritten from the run
// and the prose around it kept.
func TestRunReadme(t *testing.T) {
	dir := t.TempDir()
	readme := filepath.Join(dir, "README.md")
	const before = "# Project\n\n<!-- compare:begin -->\n| stale | 1.0 µs |\n<!-- compare:end -->\n\nafter\n"
	if err := os.WriteFile(readme, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	svg, md := filepath.Join(dir, "bench", "results", "c.svg"), filepath.Join(dir, "bench", "results", "c.md")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{
		"-duration", "300ms", "-rate", "5000", "-gzip", "-budget", "8MiB",
		"-scenarios", "overload-4", "-svg", svg, "-md", md, "-readme", readme, "-encode-pairs", "10",
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "[ 3/3]") || !strings.Contains(stderr.String(), "tracekeeper-fixed") {
		t.Errorf("the overload scenario did not run three pipelines:\n%s", stderr.String())
	}
	got, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	page := string(got)
	for _, want := range []string{
		"# Project\n\n<!-- compare:begin -->\n",
		"<!-- compare:end -->\n\nafter\n",
		"](bench/results/c.svg)",
		"[bench/results/c.md](bench/results/c.md)",
		"4 requests at once, 100ms, 503 beyond",
		"tracekeeper-fixed (WithWorkers(4))",
		"gzip compression for both",
		"our memory budget, set to 8.0 MiB",
		"10 pairs of the same batch",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("README lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "stale") {
		t.Errorf("README keeps the old block:\n%s", page)
	}
}

func TestReadmeDefault(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"-svg", "x.svg", "-md", "x.md", "-encode-pairs", "5"}, true},
		{[]string{"-duration", "1s"}, false},
		{[]string{"-gzip"}, false},
		{[]string{"-bsp-queue", "16384"}, false},
		{[]string{"-scenarios", "latency-0ms"}, false},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		for _, name := range []string{"svg", "md", "encode-pairs", "duration", "bsp-queue", "scenarios"} {
			fs.String(name, "", "")
		}
		fs.Bool("gzip", false, "")
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if got := isStandard(fs); got != tt.want {
			t.Errorf("isStandard(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
	// From inside the benchmark module the repository's README is found.
	if got := defaultReadme(); filepath.Base(got) != "README.md" || !isBenchModule(filepath.Join(filepath.Dir(got), "bench")) {
		t.Errorf("defaultReadme() = %q, want the README.md beside the bench module", got)
	}
}

func TestRelTo(t *testing.T) {
	for _, tt := range []struct{ from, target, want string }{
		{"../README.md", "results/c.svg", filepath.Base(mustWd(t)) + "/results/c.svg"},
		{"README.md", "bench/results/c.svg", "bench/results/c.svg"},
		{"/a/README.md", "/a/bench/c.md", "bench/c.md"},
		{"README.md", "", ""},
	} {
		if got := relTo(tt.from, tt.target); got != tt.want {
			t.Errorf("relTo(%q, %q) = %q, want %q", tt.from, tt.target, got, tt.want)
		}
	}
}

func mustWd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

func TestByteSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"96MiB", 96 << 20, true}, {"96M", 96 << 20, true}, {"512 KiB", 512 << 10, true},
		{"1GiB", 1 << 30, true}, {"1234", 1234, true}, {"", 0, true},
		{"-1MiB", 0, false}, {"0", 0, false}, {"12XB", 0, false}, {"MiB", 0, false}, {"99999999999GiB", 0, false},
	} {
		var b byteSize
		err := b.Set(tt.in)
		if (err == nil) != tt.ok || (tt.ok && int64(b) != tt.want) {
			t.Errorf("Set(%q) = %d, %v; want %d, ok %v", tt.in, int64(b), err, tt.want, tt.ok)
		}
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-scenarios", "nope"},
		{"-pipelines", "nope"},
		{"-duration", "0s"},
		{"-budget", "lots"},
		{"extra"},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), args, &out, &out); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
