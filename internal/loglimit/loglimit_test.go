package loglimit

import (
	"strings"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := New(time.Minute)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }

	type step struct {
		advance    time.Duration
		key        string
		ok         bool
		suppressed uint64
	}
	steps := []step{
		{0, "a", true, 0},
		{time.Second, "a", false, 0},
		{time.Second, "a", false, 0},
		{0, "b", true, 0},
		{time.Minute, "a", true, 2},
		{0, "a", false, 0},
		{2 * time.Minute, "a", true, 1},
		{0, "b", true, 0},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		ok, n := l.Allow(s.key)
		if ok != s.ok || n != s.suppressed {
			t.Fatalf("step %d (%s): Allow = %v, %d; want %v, %d", i, s.key, ok, n, s.ok, s.suppressed)
		}
	}
}

func TestLimiterForgetsPastMaxKeys(t *testing.T) {
	l := New(time.Hour)
	for i := range maxKeys + 10 {
		l.Allow(strings.Repeat("k", i+1))
	}
	if n := len(l.keys); n > maxKeys {
		t.Fatalf("limiter holds %d keys, want at most %d", n, maxKeys)
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"short", "abc", 5, "abc"},
		{"exact", "abcde", 5, "abcde"},
		{"long", "abcdefgh", 3, "abc…(8 bytes)"},
		{"rune boundary", "aé€b", 4, "aé…(7 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Truncate(tt.in, tt.n); got != tt.want {
				t.Fatalf("Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
		})
	}
}
