package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream publisher defaults.
const (
	// DefaultMaxPending is the default JetStreamOptions.MaxPending.
	DefaultMaxPending = 1024
	// DefaultAckTimeout is the default JetStreamOptions.AckTimeout.
	DefaultAckTimeout = 5 * time.Second
	// DefaultRetryBackoff is the default JetStreamOptions.RetryBackoff.
	DefaultRetryBackoff = 100 * time.Millisecond
	// DefaultMaxRetryBackoff is the default JetStreamOptions.MaxRetryBackoff.
	DefaultMaxRetryBackoff = 5 * time.Second
	// DefaultDuplicateWindow is the duplicate window of a stream made by EnsureStream.
	DefaultDuplicateWindow = 2 * time.Minute
)

// JetStreamOptions configures a JetStream publisher. Zero values take the defaults.
type JetStreamOptions struct {
	// MaxPending bounds the messages taken by Publish and not yet acknowledged
	// (default DefaultMaxPending). Publish blocks while that many are pending.
	MaxPending int
	// AckTimeout is how long to wait for a PubAck before publishing again
	// (default DefaultAckTimeout).
	AckTimeout time.Duration
	// RetryBackoff is the first pause before a retry (default DefaultRetryBackoff); it
	// doubles per attempt up to MaxRetryBackoff (default DefaultMaxRetryBackoff), with
	// jitter. A retry after a disconnection waits for the reconnection instead.
	RetryBackoff, MaxRetryBackoff time.Duration
	// Logger receives retry and drop reports; nil discards them.
	Logger *slog.Logger
}

// JetStream publishes to JetStream at-least-once: asynchronous publishes with
// Nats-Msg-Id = MsgID(subject, payload) (kept if the message already has one), at most
// MaxPending unacknowledged at a time.
//
// A message whose publish fails or is not acknowledged (disconnection, no responders,
// ack timeout, server error) is published again with the same Nats-Msg-Id, after a
// backoff or, when disconnected, as soon as the connection is back, until the server
// acknowledges it or Close gives up; the server's duplicate window drops copies it
// already stored. Only errors that a retry cannot fix are final: the connection closed
// for good, payload over the server's limit, a bad subject, or a JetStream API error
// with code 400. done is called on another goroutine, in no particular order.
type JetStream struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	watch *connWatch
	log   *slog.Logger
	opts  JetStreamOptions
	sem   chan struct{}

	mu       sync.RWMutex
	closed   bool
	closing  chan struct{}   // closed by Close: Publish takes no more
	life     context.Context // canceled when Close stops waiting: pending are abandoned
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once

	degraded  atomic.Bool // a retry is under way since the last success (for logging)
	published atomic.Uint64
	errors    atomic.Uint64
	retries   atomic.Uint64
	dropped   atomic.Uint64
	abandoned atomic.Uint64
	pending   atomic.Int64
}

var _ Publisher = (*JetStream)(nil)

// NewJetStream returns a JetStream publisher on nc. Call Close when done with it.
func NewJetStream(nc *nats.Conn, o JetStreamOptions) (*JetStream, error) {
	if o.MaxPending < 0 || o.AckTimeout < 0 || o.RetryBackoff < 0 || o.MaxRetryBackoff < 0 {
		return nil, fmt.Errorf("%w: negative jetstream publisher option", ErrInvalidOptions)
	}
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	if o.RetryBackoff == 0 {
		o.RetryBackoff = DefaultRetryBackoff
	}
	if o.MaxRetryBackoff == 0 {
		o.MaxRetryBackoff = DefaultMaxRetryBackoff
	}
	o.MaxRetryBackoff = max(o.MaxRetryBackoff, o.RetryBackoff)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// The semaphore is the real bound; nats.go's own cap is set above it so that its
	// stall (which fails after 200 ms) never triggers.
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(2*o.MaxPending),
		jetstream.WithPublishAsyncTimeout(o.AckTimeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream context: %w", err)
	}
	life, cancel := context.WithCancel(context.Background())
	return &JetStream{
		nc:      nc,
		js:      js,
		watch:   newConnWatch(nc),
		log:     o.Logger,
		opts:    o,
		sem:     make(chan struct{}, o.MaxPending),
		closing: make(chan struct{}),
		life:    life,
		cancel:  cancel,
	}, nil
}

// JetStream returns the jetstream context the publisher uses, e.g. for EnsureStream.
func (p *JetStream) JetStream() jetstream.JetStream { return p.js }

// Publish implements Publisher (see JetStream for the semantics). It sets the
// Nats-Msg-Id header on msg (allocating msg.Header if nil). msg and its payload are
// retained until done is called: do not change them before. done may be nil. After
// Close, Publish returns ErrClosed.
func (p *JetStream) Publish(ctx context.Context, msg *nats.Msg, done func(error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.closing:
		return ErrClosed
	}
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		<-p.sem
		return ErrClosed
	}
	p.wg.Add(1)
	p.mu.RUnlock()
	p.pending.Add(1)

	if msg.Header == nil {
		msg.Header = make(nats.Header, 1)
	}
	if msg.Header.Get(jetstream.MsgIDHeader) == "" {
		msg.Header[jetstream.MsgIDHeader] = []string{MsgID(msg.Subject, msg.Data)}
	}
	// Publish on the caller's goroutine while connected, so that messages enter NATS in
	// the order they were given; the acknowledgement is awaited elsewhere.
	var (
		paf   jetstream.PubAckFuture
		err   error
		tried bool
	)
	if p.nc.Status() == nats.CONNECTED {
		paf, err = p.js.PublishMsgAsync(msg)
		tried = true
	}
	go p.track(msg, done, paf, err, tried)
	return nil
}

// track sees one message through: it waits for its acknowledgement and publishes it
// again until it is acknowledged, fails for good, or is abandoned by Close.
func (p *JetStream) track(msg *nats.Msg, done func(error), paf jetstream.PubAckFuture, err error, tried bool) {
	defer p.wg.Done()
	backoff := p.opts.RetryBackoff
	for {
		if paf != nil {
			select {
			case <-paf.Ok():
				p.settle(done)
				return
			case err = <-paf.Err():
			case <-p.life.Done():
				p.abandon(done)
				return
			}
		}
		if tried {
			p.errors.Add(1)
			if permanent(err) {
				p.drop(msg, done, err)
				return
			}
			if p.degraded.CompareAndSwap(false, true) {
				p.log.Warn("jetstream publish failed, retrying", "subject", msg.Subject, "error", err)
			} else {
				p.log.Debug("jetstream publish failed, retrying", "subject", msg.Subject, "error", err)
			}
			if !errors.Is(err, nats.ErrDisconnected) {
				if !p.pause(backoff) {
					p.abandon(done)
					return
				}
				backoff = min(2*backoff, p.opts.MaxRetryBackoff)
			}
		}
		if werr := p.watch.wait(p.life, nil); werr != nil {
			if errors.Is(werr, nats.ErrConnectionClosed) {
				p.drop(msg, done, werr)
			} else {
				p.abandon(done)
			}
			return
		}
		if tried {
			p.retries.Add(1)
		}
		tried = true
		paf, err = p.js.PublishMsgAsync(msg)
		if err != nil {
			paf = nil
		}
	}
}

// pause waits about d (with ±20 % jitter); false if the publisher was abandoned meanwhile.
func (p *JetStream) pause(d time.Duration) bool {
	d += time.Duration((rand.Float64()*0.4 - 0.2) * float64(d))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.life.Done():
		return false
	}
}

func (p *JetStream) release() {
	p.pending.Add(-1)
	<-p.sem
}

func (p *JetStream) settle(done func(error)) {
	p.published.Add(1)
	if p.degraded.Load() && p.degraded.CompareAndSwap(true, false) {
		p.log.Info("jetstream publish acknowledged again")
	}
	p.release()
	settle(done, nil)
}

func (p *JetStream) drop(msg *nats.Msg, done func(error), err error) {
	p.dropped.Add(1)
	p.log.Warn("jetstream publish failed for good, message dropped", "subject", msg.Subject, "error", err)
	p.release()
	settle(done, err)
}

func (p *JetStream) abandon(done func(error)) {
	p.dropped.Add(1)
	p.abandoned.Add(1)
	p.release()
	settle(done, ErrAbandoned)
}

// permanent reports whether publishing the same message again cannot succeed.
func permanent(err error) bool {
	if errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrMaxPayload) ||
		errors.Is(err, nats.ErrBadSubject) ||
		errors.Is(err, nats.ErrHeadersNotSupported) ||
		errors.Is(err, nats.ErrInvalidMsg) ||
		errors.Is(err, jetstream.ErrAsyncPublishReplySubjectSet) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code == 400
}

// Close stops taking messages (Publish returns ErrClosed, including calls blocked on
// backpressure) and waits for the pending ones to be acknowledged, retrying as usual,
// until ctx ends. Those still pending then are abandoned: their done gets ErrAbandoned,
// and Close returns an error wrapping ErrAbandoned that says how many. Close does not
// close the connection; calling it again is harmless.
func (p *JetStream) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.closing)
	}
	p.mu.Unlock()

	idle := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(idle)
	}()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		before := p.abandoned.Load()
		p.cancel()
		<-idle
		if n := p.abandoned.Load() - before; n > 0 {
			err = fmt.Errorf("%w: %d messages", ErrAbandoned, n)
			p.log.Warn("jetstream publisher closed with unacknowledged messages", "abandoned", n)
		}
	}
	p.cancel()
	p.stopOnce.Do(p.watch.stop)
	return err
}

// Stats returns a snapshot of the counters.
func (p *JetStream) Stats() Stats {
	return Stats{
		Published: p.published.Load(),
		Errors:    p.errors.Load(),
		Retries:   p.retries.Load(),
		Pending:   p.pending.Load(),
		Dropped:   p.dropped.Load(),
	}
}

// EnsureStream makes sure a stream called name captures <prefix>.>: it creates it (file
// storage, DefaultDuplicateWindow) when missing, and when it exists without a subject
// covering <prefix>.> it adds that subject, leaving the rest of its configuration alone.
func EnsureStream(ctx context.Context, js jetstream.JetStream, name, prefix string) error {
	if err := ValidatePrefix(prefix); err != nil {
		return err
	}
	subject := prefix + ".>"
	for attempt := 0; ; attempt++ {
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = js.CreateStream(ctx, jetstream.StreamConfig{
				Name:       name,
				Subjects:   []string{subject},
				Storage:    jetstream.FileStorage,
				Duplicates: DefaultDuplicateWindow,
			})
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && attempt == 0 {
				continue // created meanwhile: look again
			}
			if err != nil {
				return fmt.Errorf("create stream %q over %s: %w", name, subject, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("look up stream %q: %w", name, err)
		}
		cfg := s.CachedInfo().Config
		for _, have := range cfg.Subjects {
			if subjectCovers(have, subject) {
				return nil
			}
		}
		cfg.Subjects = append(cfg.Subjects, subject)
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("update stream %q to add %s: %w", name, subject, err)
		}
		return nil
	}
}

// subjectCovers reports whether every subject matching sub also matches filter.
func subjectCovers(filter, sub string) bool {
	ft := strings.Split(filter, ".")
	st := strings.Split(sub, ".")
	for i, f := range ft {
		if f == ">" {
			return i < len(st)
		}
		if i >= len(st) {
			return false
		}
		if s := st[i]; s == ">" || (f != "*" && f != s) {
			return false
		}
	}
	return len(ft) == len(st)
}
