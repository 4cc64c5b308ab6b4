package cputime

import "testing"

func TestNowAdvancesWithWork(t *testing.T) {
	defer LockThread()()
	t0 := Now()
	x := 0
	for i := range 10_000_000 {
		x += i
	}
	if d := Now() - t0; d <= 0 {
		t.Fatalf("clock advanced by %v over a busy loop (%d)", d, x)
	}
}
