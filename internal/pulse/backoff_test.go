package pulse

import (
	"testing"
	"time"
)

func TestBackoffGrowsWithinBoundsAndResets(t *testing.T) {
	b := newBackoff(100*time.Millisecond, time.Second)
	for i := range 12 {
		ceiling := min(100*time.Millisecond<<i, time.Second)
		d := b.delay()
		if d < 100*time.Millisecond || d > ceiling || d < ceiling/2 {
			t.Fatalf("attempt %d: delay %s outside [%s, %s]", i, d, max(ceiling/2, 100*time.Millisecond), ceiling)
		}
	}
	b.reset()
	if d := b.delay(); d != 100*time.Millisecond {
		t.Errorf("after reset delay %s, want the minimum 100ms", d)
	}
}
