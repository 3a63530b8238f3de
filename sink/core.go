package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/datacore-bridge/datacore-bridge/internal/loglimit"
)

// CoreOptions configures a Core publisher.
type CoreOptions struct {
	// Logger receives dropped-message reports; nil discards them.
	Logger *slog.Logger
	// OnRetry, if set, is called on Publish's goroutine each time a message is
	// published again after waiting for the connection (what Stats.Retries counts).
	OnRetry func()
}

// Core publishes with core NATS: at-most-once into NATS. A message counts as published
// once nats.go has accepted it (written it to the connection, or to its bounded
// reconnect buffer while reconnecting).
//
// Backpressure: when the reconnect buffer is full (nats.ErrReconnectBufExceeded), or
// the connection has not been established yet (a cold start with NATS not up: nats.go
// then refuses messages with headers), Publish blocks until the connection is up, then
// tries again (counted in Stats.Retries). The caller bounds how many messages wait so.
// Any other error is final: done gets it (wrapping nats.go's error, e.g.
// nats.ErrMaxPayload) and the message is counted as dropped; drops are logged once per
// cause and minute, with the number held back in between. done is called on the
// caller's goroutine before Publish returns.
type Core struct {
	nc      *nats.Conn
	watch   *connWatch
	log     *slog.Logger
	dropLog *loglimit.Limiter
	onRetry func()
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
	return &Core{nc: nc, watch: newConnWatch(nc), log: log, dropLog: loglimit.New(0), onRetry: o.OnRetry, closing: make(chan struct{})}
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
		switch c.onRefusal(err) {
		case retryNow:
			c.retried()
			continue
		case waitConnected:
			c.waiting.Add(1)
			werr := c.watch.wait(ctx, c.closing)
			c.waiting.Add(-1)
			switch {
			case werr == nil:
				c.retried()
				continue
			case errors.Is(werr, nats.ErrConnectionClosed):
				err = werr
			default:
				return werr
			}
		}
		c.errors.Add(1)
		c.dropped.Add(1)
		// done gets err: the caller counts and logs the drop for users; here it is
		// a debug line, once per cause and interval.
		if ok, suppressed := c.dropLog.Allow(dropKey(err)); ok {
			c.log.Debug("nats publish failed, message dropped", "subject", msg.Subject, "error", err, "suppressed", suppressed)
		}
		settle(done, err)
		return nil
	}
}

// What Publish does after nats.go refused a message.
const (
	giveUp        = iota // the error is final: drop the message
	waitConnected        // wait until the connection is up, then publish again
	retryNow             // publish again at once
)

// onRefusal says what to do after nats.go refused a message with err.
//
// Two refusals only mean that the connection is not up: the reconnect buffer is
// full (nats.ErrReconnectBufExceeded), or the connection was never established, so
// that nats.go does not know yet whether the server takes headers
// (nats.ErrHeadersNotSupported, a cold start with NATS not up yet). A server that
// is connected and really does not take headers is final.
func (c *Core) onRefusal(err error) int {
	switch {
	case errors.Is(err, nats.ErrReconnectBufExceeded):
		return waitConnected
	case errors.Is(err, nats.ErrHeadersNotSupported):
		// The status first: nats.go records the server's INFO before it reports
		// CONNECTED, so connected-and-no-headers is the server's real answer.
		connected := c.nc.Status() == nats.CONNECTED
		switch {
		case c.nc.HeadersSupported():
			return retryNow // connected between the publish and now
		case connected:
			return giveUp
		}
		return waitConnected
	}
	return giveUp
}

// retried counts a publish attempt after the first for the same message.
func (c *Core) retried() {
	c.retries.Add(1)
	if c.onRetry != nil {
		c.onRetry()
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

// Ready returns nil when the connection is up, otherwise an error wrapping
// ErrNotConnected that says why and how many Publish calls wait for it.
func (c *Core) Ready() error {
	err := Ready(c.nc)
	if err == nil {
		return nil
	}
	if n := c.waiting.Load(); n > 0 {
		return fmt.Errorf("%w (%d messages waiting to be published)", err, n)
	}
	return err
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
