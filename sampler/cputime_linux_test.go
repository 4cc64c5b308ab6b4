package sampler

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// threadClock reads the CPU time of the calling OS thread, so that a
// benchmark on a shared machine counts its own work and not the time other
// processes take the CPU from it. lock pins the calling goroutine to its
// thread, which then runs nothing else; the returned func unpins it.
type threadClock struct{}

func (threadClock) lock() func() {
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}

func (threadClock) now() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
}

const threadClockName = "thread CPU time"
