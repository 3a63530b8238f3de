package poll

import (
	"context"
	"errors"
	"fmt"
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

// fatalRecorder is a testing.TB that records Fatalf instead of stopping.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) { r.msg = fmt.Sprintf(format, args...) }

func TestRecv(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch := make(chan int, 1)
		go func() {
			time.Sleep(time.Second)
			ch <- 7
		}()
		if got := Recv(t, ch, 2*time.Second, "seven"); got != 7 {
			t.Fatalf("Recv = %d, want 7", got)
		}

		r := &fatalRecorder{TB: t}
		start := time.Now()
		if got := Recv(r, ch, 3*time.Second, "nothing"); got != 0 {
			t.Errorf("Recv after the timeout = %d, want 0", got)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("Recv waited %v, want 3s", got)
		}
		if want := "timed out after 3s waiting for nothing"; r.msg != want {
			t.Errorf("Fatalf(%q), want %q", r.msg, want)
		}
	})
}
