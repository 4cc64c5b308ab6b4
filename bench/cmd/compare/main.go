// Command compare runs the delivery scenarios through the stock
// sdktrace.WithBatcher(otlptracehttp.New(...)) pipeline and through
// sdktrace.WithBatcher(exporter.New(...)), one after the other against an
// embedded OTLP/HTTP receiver, and prints a table of the two side by side.
// It also writes the table as Markdown and a chart as SVG, for the README.
//
// From the repository's root:
//
//	go -C bench run ./cmd/compare
//
// With the defaults it takes about 75 seconds on a two-core
// machine. A short run, for CI:
//
//	go -C bench run ./cmd/compare -duration 1s -outage 500ms
//
// Every scenario offers the same load (-rate spans per second, each with
// eight attributes) for -duration; the outage scenarios run twice as long,
// with the receiver down for -outage after a fifth of -duration. Each
// pipeline is then shut down with a deadline of -shutdown; the spans the
// receiver has answered by then are the delivered ones.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/tracekeeper/tracekeeper/bench/internal/report"
	"github.com/tracekeeper/tracekeeper/bench/internal/scenario"
)

// benchModule is the module path of the benchmark module, used to find its
// directory for the default output paths.
const benchModule = "github.com/tracekeeper/tracekeeper/bench"

type options struct {
	duration, outage, shutdown time.Duration
	rate, goroutines, bspQueue int
	scenarios, pipelines       string
	decode                     bool
	svg, md                    string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	results := defaultResultsDir()
	var o options
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "how long each latency scenario offers load; the outage scenarios run twice as long")
	fs.DurationVar(&o.outage, "outage", 2*time.Second, "how long the backend is down in the outage scenarios")
	fs.DurationVar(&o.shutdown, "shutdown", scenario.DefaultShutdownTimeout, "deadline of each pipeline's shutdown after the load")
	fs.IntVar(&o.rate, "rate", scenario.DefaultRate, "offered load, spans per second")
	fs.IntVar(&o.goroutines, "goroutines", scenario.DefaultGoroutines, "goroutines ending spans")
	fs.StringVar(&o.scenarios, "scenarios", "all", "comma-separated scenarios to run: "+strings.Join(names(scenario.Standard(time.Second, time.Second)), ", "))
	fs.StringVar(&o.pipelines, "pipelines", "stock,tracekeeper", "comma-separated pipelines to run")
	fs.IntVar(&o.bspQueue, "bsp-queue", 0, "the BatchSpanProcessor's queue size for both pipelines; 0 keeps the SDK's default of 2048")
	fs.BoolVar(&o.decode, "decode", false, "decode every request fully in the receiver (costs CPU shared with the pipelines)")
	fs.StringVar(&o.svg, "svg", filepath.Join(results, "compare.svg"), "where to write the chart; empty for none")
	fs.StringVar(&o.md, "md", filepath.Join(results, "compare.md"), "where to write the Markdown table; empty for none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	scs, err := pickScenarios(o)
	if err != nil {
		return err
	}
	kinds, err := pickPipelines(o.pipelines)
	if err != nil {
		return err
	}

	meta := report.Meta{
		Command:         commandLine(args),
		Machine:         machine(),
		Load:            loadAverage(),
		Date:            time.Now(),
		Rate:            o.rate,
		ShutdownTimeout: o.shutdown,
		BSPQueue:        o.bspQueue,
	}
	var total time.Duration
	for _, sc := range scs {
		total += time.Duration(len(kinds)) * (sc.Duration + o.shutdown)
	}
	fmt.Fprintf(stderr, "%d scenarios × %d pipelines at %d spans/s; at most %s\n", len(scs), len(kinds), o.rate, total.Round(time.Second))
	fmt.Fprintf(stderr, "machine: %s; load average %s\n", meta.Machine, meta.Load)

	live := isTerminal(stderr)
	var all []*scenario.Result
	runs, n := len(scs)*len(kinds), 0
	for _, sc := range scs {
		for _, k := range kinds {
			n++
			prefix := fmt.Sprintf("[%2d/%d] %-15s %-12s", n, runs, sc.Name, k)
			cfg := scenario.RunConfig{
				Rate: o.rate, Goroutines: o.goroutines, ShutdownTimeout: o.shutdown, Decode: o.decode,
				BSPQueue: o.bspQueue,
			}
			if live {
				cfg.Progress = func(p scenario.Progress) {
					fmt.Fprintf(stderr, "\r%s %4.1fs/%s  ended %9d  delivered %9d  backend %-9s", prefix,
						p.Elapsed.Seconds(), sc.Duration, p.Ended, p.Delivered, p.Mode)
				}
			} else {
				fmt.Fprintf(stderr, "%s running for %s…\n", prefix, sc.Duration)
			}
			res, err := scenario.Run(ctx, sc, k, cfg)
			if live {
				fmt.Fprint(stderr, "\r\033[K")
			}
			if err != nil {
				return fmt.Errorf("%s, %s: %w", sc.Name, k, err)
			}
			fmt.Fprintf(stderr, "%s delivered %6s of %9d ended, p99 End %s, CPU %s\n", prefix,
				fmt.Sprintf("%.1f%%", res.DeliveredPct()), res.Ended, res.End.Quantile(0.99), res.Usage.CPU.Round(time.Millisecond))
			all = append(all, res)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}

	fmt.Fprintln(stdout)
	if err := report.Text(stdout, all); err != nil {
		return err
	}
	var errs []error
	if o.svg != "" {
		errs = append(errs, writeFile(o.svg, func(w io.Writer) error { return report.SVG(w, all, meta) }))
	}
	if o.md != "" {
		chart := ""
		if o.svg != "" {
			if rel, err := filepath.Rel(filepath.Dir(o.md), o.svg); err == nil {
				chart = filepath.ToSlash(rel)
			}
		}
		errs = append(errs, writeFile(o.md, func(w io.Writer) error { return report.Markdown(w, all, meta, chart) }))
	}
	for _, p := range []string{o.svg, o.md} {
		if p != "" {
			fmt.Fprintf(stdout, "\nwrote %s", p)
		}
	}
	fmt.Fprintln(stdout)
	return errors.Join(errs...)
}

func names(scs []scenario.Scenario) []string {
	out := make([]string, len(scs))
	for i, s := range scs {
		out[i] = s.Name
	}
	return out
}

func pickScenarios(o options) ([]scenario.Scenario, error) {
	if o.duration <= 0 || o.outage < 0 {
		return nil, errors.New("-duration must be positive and -outage not negative")
	}
	std := scenario.Standard(o.duration, o.outage)
	if o.scenarios == "" || o.scenarios == "all" {
		return std, nil
	}
	var out []scenario.Scenario
	for _, name := range strings.Split(o.scenarios, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(std, func(s scenario.Scenario) bool { return s.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", name, strings.Join(names(std), ", "))
		}
		out = append(out, std[i])
	}
	return out, nil
}

func pickPipelines(list string) ([]scenario.Kind, error) {
	var out []scenario.Kind
	for _, name := range strings.Split(list, ",") {
		k := scenario.Kind(strings.TrimSpace(name))
		if k == "ours" {
			k = scenario.Ours
		}
		if !slices.Contains(scenario.Kinds, k) {
			return nil, fmt.Errorf("unknown pipeline %q (have stock, tracekeeper)", name)
		}
		out = append(out, k)
	}
	return out, nil
}

// writeFile writes a file through f, creating its directory.
func writeFile(path string, f func(io.Writer) error) error {
	var b bytes.Buffer
	if err := f(&b); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// defaultResultsDir is the results directory of the benchmark module,
// relative to the working directory: results when run from inside the
// module, bench/results from the repository's root.
func defaultResultsDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return filepath.Join("bench", "results")
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if isBenchModule(dir) {
			if rel, err := filepath.Rel(wd, filepath.Join(dir, "results")); err == nil {
				return rel
			}
			return filepath.Join(dir, "results")
		}
		if parent := filepath.Dir(dir); parent == dir {
			break
		}
	}
	return filepath.Join("bench", "results")
}

// isBenchModule reports whether dir holds the benchmark module's go.mod.
func isBenchModule(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == benchModule
		}
	}
	return false
}

// commandLine is the command that reproduces the run from the repository's
// root.
func commandLine(args []string) string {
	return strings.TrimSpace("go -C bench run ./cmd/compare " + strings.Join(args, " "))
}

// machine describes the computer the comparison runs on.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.Join(strings.Fields(v), " ")
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s/%s, %s",
		cpu, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// loadAverage is the system's 1, 5 and 15 minute load averages, when known.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
