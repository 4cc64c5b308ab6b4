package main

import (
	"bytes"
	"context"
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
		{"all", "all", []string{"latency-0ms", "latency-20ms", "latency-100ms", "outage-503", "outage-refused"}, false},
		{"empty means all", "", []string{"latency-0ms", "latency-20ms", "latency-100ms", "outage-503", "outage-refused"}, false},
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
	for _, want := range []string{"latency-20ms", "outage-refused", "delivered stock", "wrote " + svg} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "[ 4/4]") {
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

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-scenarios", "nope"},
		{"-pipelines", "nope"},
		{"-duration", "0s"},
		{"extra"},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), args, &out, &out); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
