package sink

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// CoreOptions configures a Core publisher.
type CoreOptions struct {
	// Logger receives dropped-message reports; nil discards them.
	Logger *slog.Logger
}

// Core publishes with core NATS: at-most-once into NATS. A message counts as published
// once nats.go has accepted it (written it to the connection, or to its bounded
// reconnect buffer while reconnecting).
//
// Backpressure: when the reconnect buffer is full (nats.ErrReconnectBufExceeded),
// Publish blocks until the connection is back, then tries again. Any other error is
// final: done gets it and the message is counted as dropped. done is called on the
// caller's goroutine before Publish returns.
type Core struct {
	nc      *nats.Conn
	watch   *connWatch
	log     *slog.Logger
	closing chan struct{}
	once    sync.Once

	published atomic.Uint64
	errors    atomic.Uint64
	dropped   atomic.Uint64
	retries   atomic.Uint64
	waiting   atomic.Int64
}

var _ Publisher = (*Core)(nil)

// NewCore returns a Core publisher on nc. Call Close when done with it.
func NewCore(nc *nats.Conn, o CoreOptions) *Core {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Core{nc: nc, watch: newConnWatch(nc), log: log, closing: make(chan struct{})}
}

// Publish implements Publisher (see Core for the semantics). done may be nil.
func (c *Core) Publish(ctx context.Context, msg *nats.Msg, done func(error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for {
		select {
		case <-c.closing:
			return ErrClosed
		default:
		}
		err := c.nc.PublishMsg(msg)
		if err == nil {
			c.published.Add(1)
			settle(done, nil)
			return nil
		}
		if errors.Is(err, nats.ErrReconnectBufExceeded) {
			c.waiting.Add(1)
			werr := c.watch.wait(ctx, c.closing)
			c.waiting.Add(-1)
			switch {
			case werr == nil:
				c.retries.Add(1)
				continue
			case errors.Is(werr, nats.ErrConnectionClosed):
				err = werr
			default:
				return werr
			}
		}
		c.errors.Add(1)
		c.dropped.Add(1)
		// done gets err: the caller counts and logs the drop, rate-limited.
		c.log.Debug("nats publish failed, message dropped", "subject", msg.Subject, "error", err)
		settle(done, err)
		return nil
	}
}

// Flush waits until the server has processed everything published so far, or ctx ends.
func (c *Core) Flush(ctx context.Context) error {
	return c.nc.FlushWithContext(ctx)
}

// Close stops taking messages: Publish calls blocked on backpressure return ErrClosed
// and later calls too. It does not close the connection.
func (c *Core) Close() {
	c.once.Do(func() {
		close(c.closing)
		c.watch.stop()
	})
}

// Stats returns a snapshot of the counters.
func (c *Core) Stats() Stats {
	return Stats{
		Published: c.published.Load(),
		Errors:    c.errors.Load(),
		Retries:   c.retries.Load(),
		Pending:   c.waiting.Load(),
		Dropped:   c.dropped.Load(),
	}
}

func settle(done func(error), err error) {
	if done != nil {
		done(err)
	}
}
