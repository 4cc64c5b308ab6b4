package cputime

import (
	"time"

	"golang.org/x/sys/unix"
)

// Name names the clock Now reads, for a benchmark's log.
const Name = "thread CPU time"

// Now returns the CPU time the calling OS thread has used.
func Now() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic("cputime: " + err.Error())
	}
	return time.Duration(ts.Nano())
}
