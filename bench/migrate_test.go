package bench_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	// The stock gRPC exporter is what the migrated gRPC program was
	// written against; importing it keeps it in this module's go.mod.
	_ "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"google.golang.org/protobuf/proto"
)

// migration is one stock program and the two edits that move it to
// tracekeeper: its import, and its New call.
type migration struct {
	pkg     string // the stock package, as the program names it
	newCall string // the program's New call
	ours    string // what replaces it
	modes   []string
}

var migrations = []migration{
	{
		pkg:     "otlptracehttp",
		newCall: "otlptracehttp.New(ctx, opts...)",
		ours:    "otlptracehttp.New(opts...), error(nil)",
		modes:   []string{"", "client"},
	},
	{
		pkg:     "otlptracegrpc",
		newCall: "otlptracegrpc.New(ctx, opts...)",
		ours:    "otlptracegrpc.New(append(opts, otlptracegrpc.WithProtocol(otlptracegrpc.ProtocolGRPC))...), error(nil)",
		modes:   []string{"", "conn", "dns"},
	},
}

// TestMigration builds each program in testdata/migrate twice, as written
// against the stock exporter and with only its import and its New call
// replaced, runs both against the Collector's OTLP receiver, and requires
// the Collector to receive the same spans, field for field, from both.
func TestMigration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds four programs")
	}
	bin := buildMigrations(t)
	for _, m := range migrations {
		t.Run(m.pkg, func(t *testing.T) {
			stock := startCollector(t, 0)
			runProgram(t, filepath.Join(bin, m.pkg+"-stock"), addrFor(m, stock))
			want := flatten(t, stock.sink.AllTraces())
			if len(want) != 30 {
				t.Fatalf("the stock program delivered %d spans, want 30", len(want))
			}
			for _, mode := range m.modes {
				name := "ours"
				if mode != "" {
					name += "-" + mode
				}
				t.Run(name, func(t *testing.T) {
					ours := startCollector(t, 0)
					runProgram(t, filepath.Join(bin, m.pkg+"-ours"), addrFor(m, ours), mode)
					got := flatten(t, ours.sink.AllTraces())
					if len(got) != len(want) {
						t.Fatalf("the migrated program delivered %d spans, the stock one %d", len(got), len(want))
					}
					for i := range want {
						if !proto.Equal(got[i], want[i]) {
							t.Fatalf("span %d differs:\nmigrated: %v\nstock:    %v", i, got[i], want[i])
						}
					}
				})
			}
		})
	}
}

func addrFor(m migration, c *collector) string {
	if m.pkg == "otlptracegrpc" {
		return c.grpcAddr
	}
	return c.httpAddr
}

// buildMigrations writes every program twice into a module of its own
// that requires what this one does, and builds them all in one go build.
func buildMigrations(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	mod = bytes.Replace(mod, []byte("module github.com/tracekeeper/tracekeeper/bench"), []byte("module migrate"), 1)
	mod = bytes.Replace(mod, []byte("=> ../"), []byte("=> "+root), 1)
	sum, err := os.ReadFile("go.sum")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "go.mod"), mod)
	write(t, filepath.Join(dir, "go.sum"), sum)
	for _, m := range migrations {
		src, err := os.ReadFile(filepath.Join("testdata", "migrate", m.pkg, "main.go"))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, m.pkg+"-stock", "main.go"), src)
		write(t, filepath.Join(dir, m.pkg+"-ours", "main.go"), migrate(t, m, src))
	}
	out := filepath.Join(dir, "bin")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out+string(filepath.Separator), "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// migrate makes the two edits a user makes, and checks that they are the
// only difference.
func migrate(t *testing.T, m migration, src []byte) []byte {
	t.Helper()
	stockImport := `"go.opentelemetry.io/otel/exporters/otlp/otlptrace/` + m.pkg + `"`
	oursImport := m.pkg + ` "github.com/tracekeeper/tracekeeper/exporter"`
	s := string(src)
	if strings.Count(s, stockImport) != 1 || strings.Count(s, m.newCall) != 1 {
		t.Fatalf("%s: the program must hold the import and the New call once each", m.pkg)
	}
	s = strings.Replace(s, stockImport, oursImport, 1)
	s = strings.Replace(s, m.newCall, m.ours, 1)
	changed := 0
	a, b := strings.Split(string(src), "\n"), strings.Split(s, "\n")
	for i := range a {
		if a[i] != b[i] {
			changed++
		}
	}
	if changed != 2 {
		t.Fatalf("%s: %d lines changed, want 2", m.pkg, changed)
	}
	return []byte(s)
}

var errLine = regexp.MustCompile(`(?i)error|invalid|ignor`)

func runProgram(t *testing.T, bin string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var argv []string
	for _, a := range args {
		if a != "" {
			argv = append(argv, a)
		}
	}
	cmd := exec.CommandContext(ctx, bin, argv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(bin), argv, err, out)
	}
	if errLine.Match(out) {
		t.Fatalf("%s %v printed:\n%s", filepath.Base(bin), argv, out)
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
