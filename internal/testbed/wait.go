package testbed

import (
	"context"
	"testing"
	"time"

	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

// Until checks cond every few milliseconds until it holds (nil), ctx is done
// (ctx.Err()) or limit has passed (an error naming what and wrapping
// ErrTimeout): a condition with a deadline, not a sleep. See poll.Until.
func Until(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	return poll.Until(ctx, limit, what, cond)
}

// WaitFor waits until cond holds, failing the test after timeout. See poll.Wait.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Wait(t, timeout, what, cond)
}
