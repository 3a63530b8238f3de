package sink

import (
	"context"
	"errors"
	"sync"

	"github.com/nats-io/nats.go"
)

var (
	// ErrInvalidToken means a string is not a token produced by EscapeToken.
	ErrInvalidToken = errors.New("invalid subject token")
	// ErrInvalidPrefix means a subject prefix is empty or holds an empty token, a
	// wildcard, a space or a control character.
	ErrInvalidPrefix = errors.New("invalid subject prefix")
	// ErrInvalidOptions means ConnectOptions or publisher options are inconsistent.
	ErrInvalidOptions = errors.New("invalid nats options")
	// ErrConflictingOptions means two ConnectOptions fields are set that cannot be
	// combined (two ways to authenticate); it comes with ErrInvalidOptions.
	ErrConflictingOptions = errors.New("cannot be combined")
	// ErrMissingOption means a ConnectOptions field is empty while the field it
	// goes with is set (User and Password, TLSCert and TLSKey); it comes with
	// ErrInvalidOptions.
	ErrMissingOption = errors.New("is required")
	// ErrNotConnected means the NATS connection is not currently usable.
	ErrNotConnected = errors.New("nats not connected")
	// ErrClosed means the publisher was closed: Publish takes no more messages.
	ErrClosed = errors.New("publisher closed")
	// ErrAbandoned is passed to done for a message still unacknowledged when Close gave
	// up waiting, and wrapped by Close's error, which states how many there were.
	ErrAbandoned = errors.New("publish abandoned unacknowledged")
	// ErrStalled is wrapped by JetStream.Ready's error when pending messages keep
	// failing (no acknowledgement) for longer than JetStreamOptions.StalledAfter.
	ErrStalled = errors.New("jetstream publishing stalled")
)

// Publisher hands messages to NATS.
type Publisher interface {
	// Publish hands msg to NATS. It blocks while the bounded in-flight budget is used up
	// (backpressure), until ctx is done (then returns ctx.Err() and done is NOT called).
	// done is called exactly once when settled: nil once NATS has the message (core:
	// accepted by nats.go; JetStream: PubAck received, after retries with the same
	// Nats-Msg-Id), or the final error. A non-nil return means done was not and will not
	// be called.
	Publish(ctx context.Context, msg *nats.Msg, done func(error)) error
}

// Stats is a snapshot of a publisher's counters.
type Stats struct {
	// Published counts messages settled with done(nil).
	Published uint64
	// Errors counts failed attempts: publish calls refused by nats.go, negative or
	// missing acknowledgements. A failed attempt that is retried counts here and in
	// Retries.
	Errors uint64
	// Retries counts publish attempts after the first for the same message.
	Retries uint64
	// Pending is the number of messages taken by Publish and not yet settled (JetStream),
	// or the number of Publish calls waiting for NATS to come back (core).
	Pending int64
	// Dropped counts messages settled with a non-nil error: lost to NATS.
	Dropped uint64
}

// connWatch wakes waiters whenever the connection's status changes, so they can wait
// for CONNECTED without polling.
type connWatch struct {
	nc *nats.Conn
	ch chan nats.Status

	mu   sync.Mutex
	wake chan struct{} // closed and replaced on every status event
	done chan struct{} // closed when the loop has returned
}

func newConnWatch(nc *nats.Conn) *connWatch {
	w := &connWatch{
		nc:   nc,
		ch:   nc.StatusChanged(nats.CONNECTED, nats.RECONNECTING, nats.DISCONNECTED, nats.CLOSED),
		wake: make(chan struct{}),
		done: make(chan struct{}),
	}
	go w.loop()
	return w
}

func (w *connWatch) loop() {
	defer close(w.done)
	for range w.ch {
		w.broadcast()
	}
	w.broadcast()
}

func (w *connWatch) broadcast() {
	w.mu.Lock()
	close(w.wake)
	w.wake = make(chan struct{})
	w.mu.Unlock()
}

// wait returns nil once the connection is CONNECTED, nats.ErrConnectionClosed when it is
// closed for good, ctx.Err() when ctx is done and ErrClosed when stop is closed.
func (w *connWatch) wait(ctx context.Context, stop <-chan struct{}) error {
	for {
		w.mu.Lock()
		wake := w.wake
		w.mu.Unlock()
		switch w.nc.Status() {
		case nats.CONNECTED:
			return nil
		case nats.CLOSED:
			return nats.ErrConnectionClosed
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return ErrClosed
		}
	}
}

// stop unregisters the status listener and waits for the loop to end.
func (w *connWatch) stop() {
	w.nc.RemoveStatusListener(w.ch)
	<-w.done
}
