package otlptest

import "runtime"

// AllocsAcrossCollections runs f runs times, each right after two
// garbage collections (which empty every sync.Pool), and returns the
// allocations per run. As testing.AllocsPerRun does, the average is
// rounded down: a stray allocation elsewhere in the process does not
// count, a run that allocates each time does.
func AllocsAcrossCollections(runs int, f func()) uint64 {
	var ms runtime.MemStats
	var total uint64
	for range runs {
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		f()
		runtime.ReadMemStats(&ms)
		total += ms.Mallocs - before
	}
	return total / uint64(runs)
}
