// Package cputime reads the CPU time of the calling OS thread, the clock
// the paired benchmarks time their chunks by: on a shared machine it
// counts the benchmark's own work and not the time other processes take
// the CPU from it. Work on other threads (background goroutines, the
// garbage collector's workers) is left out; the collector's assists on
// the benchmark's thread are in.
//
// Where the thread's CPU time cannot be read, the clock is the wall clock
// and Name says so.
package cputime

import "runtime"

// LockThread pins the calling goroutine to its OS thread, so that Now
// keeps reading the same thread's clock, and returns the func that unpins
// it.
func LockThread() (unlock func()) {
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}
