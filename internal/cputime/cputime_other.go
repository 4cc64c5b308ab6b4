//go:build !linux

package cputime

import "time"

// Name names the clock Now reads, for a benchmark's log.
const Name = "wall time"

var start = time.Now()

// Now returns the wall time since the program started.
func Now() time.Duration { return time.Since(start) }
