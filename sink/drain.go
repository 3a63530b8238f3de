package sink

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
)

// Buffered is how many bytes nats.go holds for the server on nc, or -1 if
// unknown.
func Buffered(nc *nats.Conn) int {
	n, err := nc.Buffered()
	if err != nil {
		return -1
	}
	return n
}

// Drain drains nc and waits until it is closed or ctx is done; either way nc
// is closed when Drain returns. A connection that is down has nothing to
// drain: that is not an error. When ctx ends the wait with bytes still
// buffered for the server, the error wraps ErrAbandoned and says how many.
func Drain(ctx context.Context, nc *nats.Conn) error {
	// Listen before draining, so that the close cannot be missed.
	closed := nc.StatusChanged(nats.CLOSED)
	defer nc.RemoveStatusListener(closed)
	if err := nc.Drain(); err != nil {
		nc.Close()
		if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) {
			return nil // nothing can be drained from a connection that is down
		}
		return err
	}
	if nc.IsClosed() {
		return nil
	}
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		if nc.IsClosed() {
			return nil
		}
		n := Buffered(nc)
		nc.Close()
		if n > 0 {
			return fmt.Errorf("%w: %d bytes not flushed to NATS: %w", ErrAbandoned, n, ctx.Err())
		}
		return ctx.Err()
	}
}
