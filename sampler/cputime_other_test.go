//go:build !linux

package sampler

import "time"

// threadClock falls back to the wall clock where the thread's CPU time is
// not read.
type threadClock struct{}

var wallStart = time.Now()

func (threadClock) lock() func() { return func() {} }

func (threadClock) now() time.Duration { return time.Since(wallStart) }

const threadClockName = "wall time"
