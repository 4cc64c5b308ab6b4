// Package report turns the results of the comparison scenarios into the
// forms the compare command writes: a plain-text table for the terminal, a
// Markdown page for the README, and an SVG chart of delivered spans and
// span.End() latency per scenario. The chart is written by hand, element by
// element, so that the benchmark module pulls in no plotting library.
package report
