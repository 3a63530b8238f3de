package poll

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestUntil(t *testing.T) {
	for _, tt := range []struct {
		name      string
		trueAfter int // checks before cond holds; -1 never
		cancel    bool
		wantErr   error
		wantCalls int
		wantTime  time.Duration // time passed in the bubble
	}{
		{name: "holds at once", trueAfter: 0, wantCalls: 1},
		{name: "holds on the fourth check", trueAfter: 3, wantCalls: 4, wantTime: (1 + 2 + 4) * time.Millisecond},
		{name: "never holds", trueAfter: -1, wantErr: ErrTimeout, wantTime: 102 * time.Millisecond}, // 1+2+4 ms, then every 5 ms past 98 ms,
		{name: "context ends", trueAfter: -1, cancel: true, wantErr: context.Canceled, wantCalls: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if tt.cancel {
					cancel()
				}
				calls := 0
				start := time.Now()
				err := Until(ctx, 98*time.Millisecond, "the thing", func() bool {
					calls++
					return tt.trueAfter >= 0 && calls > tt.trueAfter
				})
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Until = %v, want %v", err, tt.wantErr)
				}
				if errors.Is(err, ErrTimeout) && !strings.Contains(err.Error(), "the thing") {
					t.Errorf("error %q does not name what was waited for", err)
				}
				if tt.wantCalls > 0 && calls != tt.wantCalls {
					t.Errorf("cond checked %d times, want %d", calls, tt.wantCalls)
				}
				if got := time.Since(start); got != tt.wantTime {
					t.Errorf("Until took %v, want %v", got, tt.wantTime)
				}
			})
		})
	}
}
