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
// With the defaults it takes about six minutes on a two-core machine,
// and it rewrites the README's performance block (the lines between
// <!-- compare:begin --> and <!-- compare:end -->) with what it measured,
// the paired encode measurement included. A short run, for CI, leaves the
// README alone:
//
//	go -C bench run ./cmd/compare -duration 1s -outage 500ms -long-outage 3s
//
// Every scenario offers the same load (-rate spans per second, each with
// eight attributes) for -duration; the outage scenarios run twice as long,
// with the receiver down for -outage after a fifth of -duration. The
// overload scenario also runs ours with a fixed pool of workers as large
// as the backend's capacity, and the outages also run ours with a disk
// spool. The long outage offers 50,000 spans/s with the receiver
// answering 503 for -long-outage, from one second in, and goes on half as
// long again after it. Each pipeline is then shut down with a
// deadline of -shutdown; the spans the receiver has answered by then are
// the delivered ones.
//
// -gzip compresses both pipelines' requests and -budget sets our
// exporter's memory budget, for example:
//
//	go -C bench run ./cmd/compare -bsp-queue 16384 -gzip -md results/compare-gzip.md -svg results/compare-gzip.svg
//
// -readme writes the block into the given README; it defaults to the
// repository's README.md for a run with every measurement flag at its
// default, and to none otherwise.
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

	"github.com/tracekeeper/tracekeeper/bench/internal/encodecost"
	"github.com/tracekeeper/tracekeeper/bench/internal/report"
	"github.com/tracekeeper/tracekeeper/bench/internal/scenario"
)

// benchModule is the module path of the benchmark module, used to find its
// directory for the default output paths.
const benchModule = "github.com/tracekeeper/tracekeeper/bench"

type options struct {
	duration, outage, shutdown time.Duration
	longOutage                 time.Duration
	spoolMax                   byteSize
	rate, goroutines, bspQueue int
	scenarios, pipelines       string
	decode, gzip, h2c          bool
	budget                     byteSize
	svg, md, readme            string
	encodePairs                int
}

// outputFlags are the flags that say where results go, not what is
// measured: setting them keeps a run standard.
var outputFlags = []string{"svg", "md", "readme", "encode-pairs"}

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
	fs.DurationVar(&o.longOutage, "long-outage", 30*time.Second, fmt.Sprintf("how long the backend answers 503 in the long-outage scenario, at %d spans/s; 0 leaves it out", scenario.LongOutageRate))
	fs.Var(&o.spoolMax, "spool-max", "disk budget of ours with a spool, such as 2GiB (WithSpool); empty keeps its default")
	fs.DurationVar(&o.shutdown, "shutdown", scenario.DefaultShutdownTimeout, "deadline of each pipeline's shutdown after the load")
	fs.IntVar(&o.rate, "rate", scenario.DefaultRate, "offered load, spans per second")
	fs.IntVar(&o.goroutines, "goroutines", scenario.DefaultGoroutines, "goroutines ending spans")
	fs.StringVar(&o.scenarios, "scenarios", "all", "comma-separated scenarios to run: "+
		strings.Join(names(standard(time.Second, time.Second, 30*time.Second)), ", "))
	fs.StringVar(&o.pipelines, "pipelines", "stock,tracekeeper", "comma-separated pipelines to run")
	fs.IntVar(&o.bspQueue, "bsp-queue", 0, "the BatchSpanProcessor's queue size for both pipelines; 0 keeps the SDK's default of 2048")
	fs.BoolVar(&o.decode, "decode", false, "decode every request fully in the receiver (costs CPU shared with the pipelines)")
	fs.BoolVar(&o.gzip, "gzip", false, "compress every pipeline's requests with gzip")
	fs.BoolVar(&o.h2c, "h2c", false, "send every pipeline's requests over HTTP/2 without TLS, through a client of its own (WithHTTPClient)")
	fs.Var(&o.budget, "budget", "our exporter's memory budget, such as 96MiB (WithMemoryBudget); empty keeps its default")
	fs.StringVar(&o.svg, "svg", filepath.Join(results, "compare.svg"), "where to write the chart; empty for none")
	fs.StringVar(&o.md, "md", filepath.Join(results, "compare.md"), "where to write the Markdown table; empty for none")
	fs.StringVar(&o.readme, "readme", "", "README whose performance block to rewrite; empty for none "+
		"(default: the repository's README.md when every measurement flag is at its default)")
	fs.IntVar(&o.encodePairs, "encode-pairs", 400, "pairs of the encode measurement written into the README's block")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if !isSet(fs, "readme") && isStandard(fs) {
		o.readme = defaultReadme()
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
		Gzip:            o.gzip,
		H2C:             o.h2c,
		MemoryBudget:    int(o.budget),
	}
	var total time.Duration
	runs := 0
	for _, sc := range scs {
		k := len(sc.Pipelines(kinds))
		runs += k
		total += time.Duration(k) * (sc.Duration + o.shutdown)
	}
	fmt.Fprintf(stderr, "%d scenarios, %d runs at %d spans/s; at most %s\n", len(scs), runs, o.rate, total.Round(time.Second))
	fmt.Fprintf(stderr, "machine: %s; load average %s\n", meta.Machine, meta.Load)

	live := isTerminal(stderr)
	var all []*scenario.Result
	n := 0
	for _, sc := range scs {
		for _, k := range sc.Pipelines(kinds) {
			n++
			prefix := fmt.Sprintf("[%2d/%d] %-15s %-17s", n, runs, sc.Name, k)
			cfg := scenario.RunConfig{
				Rate: o.rate, Goroutines: o.goroutines, ShutdownTimeout: o.shutdown, Decode: o.decode,
				BSPQueue: o.bspQueue, Gzip: o.gzip, H2C: o.h2c, MemoryBudget: int(o.budget), SpoolMaxBytes: int64(o.spoolMax),
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
			fmt.Fprintf(stderr, "%s delivered %6s of %9d ended, p99 End %s, CPU %s%s\n", prefix,
				fmt.Sprintf("%.1f%%", res.DeliveredPct()), res.Ended, res.End.Quantile(0.99), res.Usage.CPU.Round(time.Millisecond),
				watched(res))
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
	if o.readme != "" {
		errs = append(errs, writeReadme(ctx, o, all, meta, stderr))
	}
	for _, p := range []string{o.svg, o.md, o.readme} {
		if p != "" {
			fmt.Fprintf(stdout, "\nwrote %s", p)
		}
	}
	fmt.Fprintln(stdout)
	return errors.Join(errs...)
}

// writeReadme runs the paired encode measurement and rewrites the
// README's performance block with it and the results.
func writeReadme(ctx context.Context, o options, all []*scenario.Result, meta report.Meta, stderr io.Writer) error {
	rd := report.Readme{Chart: relTo(o.readme, o.svg), Page: relTo(o.readme, o.md)}
	if o.encodePairs > 0 {
		fmt.Fprintf(stderr, "encode: %d pairs of %d spans, stock and ours alternating…\n", o.encodePairs, encodecost.Batch)
		p, err := encodecost.New(ctx)
		if err != nil {
			return err
		}
		res, err := p.Run(ctx, o.encodePairs)
		_ = p.Close(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "encode: stock %.0f ns/span, ours %.0f ns/span, stock/ours median %.1f× (%.1f–%.1f×)\n",
			res.StockNs, res.OursNs, res.RatioMedian, res.RatioMin, res.RatioMax)
		rd.Encode = &res
	}
	var b strings.Builder
	if err := report.README(&b, all, meta, rd); err != nil {
		return err
	}
	doc, err := os.ReadFile(o.readme)
	if err != nil {
		return fmt.Errorf("read the README: %w", err)
	}
	doc, err = report.ReplaceBlock(doc, report.ReadmeBlock, b.String())
	if err != nil {
		return fmt.Errorf("%s: %w", o.readme, err)
	}
	return writeFile(o.readme, func(w io.Writer) error {
		_, err := w.Write(doc)
		return err
	})
}

// watched describes what our exporter's Stats showed during the load.
func watched(r *scenario.Result) string {
	w := r.Watch
	if w.Samples == 0 {
		return ""
	}
	return fmt.Sprintf(", limit %d/%d, RTT %s, held at most %.1f of %.1f MiB, heap +%.1f MiB", w.EndLimit, w.PeakLimit,
		w.RoundTrip.Round(time.Millisecond), float64(w.PeakHeld)/(1<<20), float64(w.Budget)/(1<<20),
		float64(int64(r.Usage.PeakLiveHeap)-int64(r.Usage.StartLiveHeap))/(1<<20))
}

// relTo is target's path relative to the directory of from, with forward
// slashes, as a Markdown link from from needs; empty when target is.
func relTo(from, target string) string {
	if target == "" {
		return ""
	}
	base, err1 := filepath.Abs(filepath.Dir(from))
	abs, err2 := filepath.Abs(target)
	if err1 != nil || err2 != nil {
		return filepath.ToSlash(target)
	}
	rel, err := filepath.Rel(base, abs)
	if err != nil {
		return filepath.ToSlash(abs)
	}
	return filepath.ToSlash(rel)
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// isStandard reports whether every flag that changes what is measured is
// at its default: the run the README's performance block shows.
func isStandard(fs *flag.FlagSet) bool {
	standard := true
	fs.Visit(func(f *flag.Flag) {
		if !slices.Contains(outputFlags, f.Name) {
			standard = false
		}
	})
	return standard
}

// defaultReadme is the repository's README.md, found beside the benchmark
// module; empty when the module cannot be found or has no README beside it.
func defaultReadme() string {
	dir := benchDir()
	if dir == "" {
		return ""
	}
	p := filepath.Join(dir, "..", "README.md")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// byteSize is a flag.Value for a size in bytes: a number with an optional
// unit B, KiB, MiB or GiB (also K, M, G, KB, MB, GB, all powers of 1024).
type byteSize int64

func (b *byteSize) String() string {
	if b == nil || *b == 0 {
		return ""
	}
	return fmt.Sprintf("%dB", int64(*b))
}

func (b *byteSize) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		*b = 0
		return nil
	}
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToLower(strings.TrimSpace(s[len(num):]))
	mult := map[string]int64{"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
		"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}[unit]
	var n int64
	if _, err := fmt.Sscanf(num, "%d", &n); err != nil || mult == 0 || n <= 0 {
		return fmt.Errorf("bad size %q: want a positive number of bytes, KiB, MiB or GiB", s)
	}
	if n > (1<<62)/mult {
		return fmt.Errorf("size %q is too large", s)
	}
	*b = byteSize(n * mult)
	return nil
}

func names(scs []scenario.Scenario) []string {
	out := make([]string, len(scs))
	for i, s := range scs {
		out[i] = s.Name
	}
	return out
}

// standard is the comparison's scenarios: scenario.Standard, then the
// long outage unless longOutage is zero.
func standard(duration, outage, longOutage time.Duration) []scenario.Scenario {
	std := scenario.Standard(duration, outage)
	if longOutage > 0 {
		std = append(std, scenario.LongOutage(longOutage))
	}
	return std
}

func pickScenarios(o options) ([]scenario.Scenario, error) {
	if o.duration <= 0 || o.outage < 0 {
		return nil, errors.New("-duration must be positive and -outage not negative")
	}
	if o.longOutage < 0 {
		return nil, errors.New("-long-outage must not be negative")
	}
	std := standard(o.duration, o.outage, o.longOutage)
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

// pickPipelines returns the pipelines every scenario runs; the overload
// scenarios add ours with a fixed pool of workers by themselves.
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
	if dir := benchDir(); dir != "" {
		return filepath.Join(dir, "results")
	}
	return filepath.Join("bench", "results")
}

// benchDir is the benchmark module's directory, relative to the working
// directory when it can be, found by walking up from it; empty when it is
// not found.
func benchDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if isBenchModule(dir) {
			if rel, err := filepath.Rel(wd, dir); err == nil {
				return rel
			}
			return dir
		}
		if parent := filepath.Dir(dir); parent == dir {
			return ""
		}
	}
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
