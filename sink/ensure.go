package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/datacore-bridge/datacore-bridge/internal/backoff"
)

// DefaultEnsureBackoff is how StreamEnsurer waits between attempts when its
// options name no policy.
var DefaultEnsureBackoff = backoff.Policy{Min: 250 * time.Millisecond, Max: 10 * time.Second}

// ensureCallTimeout bounds one attempt to create or update the stream.
const ensureCallTimeout = 10 * time.Second

// StreamEnsurerOptions configure a StreamEnsurer.
type StreamEnsurerOptions struct {
	// Stream is the stream's name.
	Stream string
	// Prefix is the subject prefix: the stream captures Prefix + ".>".
	Prefix string
	// Backoff is the wait between failed attempts; zero: DefaultEnsureBackoff.
	Backoff backoff.Policy
	// Hint is logged with a failure: what the operator should check.
	Hint string
	// Logger receives "stream ready" once and each distinct failure; nil: slog.Default().
	Logger *slog.Logger
}

// StreamEnsurer creates or updates a JetStream stream in the background,
// retrying with backoff until it succeeds or it is stopped. NATS may be away
// or refusing credentials when the bridge starts: publishes before the stream
// exists are retried by the JetStream publisher, and Err says why the stream
// is not there yet.
type StreamEnsurer struct {
	js  jetstream.JetStream
	o   StreamEnsurerOptions
	log *slog.Logger
	err atomic.Pointer[errBox]

	startOnce sync.Once
	stopOnce  sync.Once
	cancel    context.CancelFunc
	done      chan struct{}
}

// errBox lets an error sit in an atomic.Pointer.
type errBox struct{ err error }

// NewStreamEnsurer returns a StreamEnsurer for o.Stream on js; Err reports the
// stream as not ensured until Start has succeeded.
func NewStreamEnsurer(js jetstream.JetStream, o StreamEnsurerOptions) *StreamEnsurer {
	if o.Backoff.Min <= 0 {
		o.Backoff = DefaultEnsureBackoff
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	e := &StreamEnsurer{js: js, o: o, log: log, done: make(chan struct{})}
	e.err.Store(&errBox{errors.New("stream " + o.Stream + " not ensured yet")})
	return e
}

// Err is nil once the stream has been created or checked, else why not.
func (e *StreamEnsurer) Err() error {
	if b := e.err.Load(); b != nil {
		return b.err
	}
	return nil
}

// Start runs the attempts in a goroutine until one succeeds, ctx is done or
// Stop is called. Calls after the first do nothing.
func (e *StreamEnsurer) Start(ctx context.Context) {
	e.startOnce.Do(func() {
		ctx, e.cancel = context.WithCancel(ctx)
		go func() {
			defer close(e.done)
			e.run(ctx)
		}()
	})
}

// Stop cancels the attempts and waits for the goroutine Start began. It is
// safe to call more than once, and without Start.
func (e *StreamEnsurer) Stop() {
	e.stopOnce.Do(func() {
		started := true
		e.startOnce.Do(func() { started = false })
		if !started {
			return
		}
		e.cancel()
		<-e.done
	})
}

func (e *StreamEnsurer) run(ctx context.Context) {
	b := backoff.New(e.o.Backoff)
	logged := ""
	for {
		callCtx, cancel := context.WithTimeout(ctx, ensureCallTimeout)
		err := EnsureStream(callCtx, e.js, e.o.Stream, e.o.Prefix)
		cancel()
		if err == nil {
			e.err.Store(nil)
			e.log.Info("stream ready", "stream", e.o.Stream, "subjects", e.o.Prefix+".>")
			return
		}
		if ctx.Err() != nil {
			return
		}
		err = fmt.Errorf("stream %s: %w", e.o.Stream, err)
		e.err.Store(&errBox{err})
		if err.Error() != logged {
			logged = err.Error()
			e.log.Error("cannot create or update the JetStream stream; retrying", "err", err, "hint", e.o.Hint)
		}
		t := time.NewTimer(b.Next())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
