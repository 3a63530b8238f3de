package backoff

import (
	"testing"
	"time"
)

func TestPolicyCap(t *testing.T) {
	p := Policy{Min: 250 * time.Millisecond, Max: 30 * time.Second}
	tests := []struct {
		name    string
		attempt int
		want    time.Duration
	}{
		{"first", 0, 250 * time.Millisecond},
		{"second", 1, 500 * time.Millisecond},
		{"seventh", 6, 16 * time.Second},
		{"capped", 7, 30 * time.Second},
		{"far past the cap", 1000, 30 * time.Second},
		{"negative counts as first", -3, 250 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Cap(tt.attempt); got != tt.want {
				t.Fatalf("Cap(%d) = %v, want %v", tt.attempt, got, tt.want)
			}
		})
	}
	if got := (Policy{Min: time.Second, Max: time.Millisecond}).Cap(3); got != time.Second {
		t.Fatalf("Max below Min: Cap = %v, want Min", got)
	}
}

func TestDelayIsInUpperHalf(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for attempt := range 10 {
		hi := p.Cap(attempt)
		for range 200 {
			if d := p.Delay(attempt); d < hi/2 || d > hi {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", attempt, d, hi/2, hi)
			}
		}
	}
}

func TestBackoffCountsAndResets(t *testing.T) {
	b := New(Policy{Min: time.Second, Max: time.Minute})
	for i := range 3 {
		if d := b.Next(); d < (time.Second<<i)/2 || d > time.Second<<i {
			t.Fatalf("Next #%d = %v, want within [%v, %v]", i, d, (time.Second<<i)/2, time.Second<<i)
		}
	}
	if b.Attempts() != 3 {
		t.Fatalf("Attempts = %d, want 3", b.Attempts())
	}
	b.Reset()
	if d := b.Next(); d > time.Second {
		t.Fatalf("Next after Reset = %v, want at most 1s", d)
	}
}

// TestBackoffGrowsToTheCap walks a retry loop past its cap: every wait is in
// the upper half of Min doubled per attempt, and stays there once Max is reached.
func TestBackoffGrowsToTheCap(t *testing.T) {
	b := New(Policy{Min: 100 * time.Millisecond, Max: 2 * time.Second})
	ceil := 100 * time.Millisecond
	for i := range 12 {
		if d := b.Next(); d < ceil/2 || d > ceil {
			t.Fatalf("Next #%d = %v, want within [%v, %v]", i, d, ceil/2, ceil)
		}
		ceil = min(2*ceil, 2*time.Second)
	}
	if ceil != 2*time.Second {
		t.Fatalf("the walk never reached the cap: %v", ceil)
	}
}
