package testbed

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// pollEvery is how often Until checks its condition.
const pollEvery = 5 * time.Millisecond

// Until checks cond every few milliseconds until it holds (nil), ctx is done
// (ctx.Err()) or limit has passed (an error naming what and wrapping
// ErrTimeout): a condition with a deadline, not a sleep.
func Until(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w after %s", what, ErrTimeout, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// WaitFor waits until cond holds, failing the test after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := Until(t.Context(), timeout, what, cond); err != nil {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}
