package poll

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// ErrTimeout is wrapped by Until's error when the condition did not hold in time.
var ErrTimeout = errors.New("timed out")

// Intervals between two checks of the condition: the first checks come
// quickly, so that a condition met at once costs little time, then the
// interval grows to maxInterval, so that a long wait on a costly condition
// costs little CPU.
const (
	minInterval = time.Millisecond
	maxInterval = 5 * time.Millisecond
)

// Until checks cond until it holds (nil), ctx is done (ctx.Err()) or limit
// has passed (an error naming what and wrapping ErrTimeout). cond is checked
// at once, then every few milliseconds.
func Until(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	interval := minInterval
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w after %s", what, ErrTimeout, limit)
		}
		timer.Reset(interval)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		interval = min(2*interval, maxInterval)
	}
	return nil
}

// Wait waits until cond holds, failing the test (t.Fatalf, naming what) if
// it does not within timeout or the test's context ends first.
func Wait(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := Until(t.Context(), timeout, what, cond); err != nil {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Recv returns the next value received from ch (the zero value once ch is
// closed), failing the test (t.Fatalf, naming what) if none comes within
// timeout.
func Recv[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
		var zero T
		return zero
	}
}
