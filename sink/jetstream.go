package sink

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/datacore-bridge/datacore-bridge/internal/backoff"
	"github.com/datacore-bridge/datacore-bridge/internal/loglimit"
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
	// DefaultStalledAfter is the default JetStreamOptions.StalledAfter.
	DefaultStalledAfter = 5 * time.Second
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
	// doubles per attempt up to MaxRetryBackoff (default DefaultMaxRetryBackoff), each
	// pause jittered down into its upper half (internal/backoff). A retry after a
	// disconnection waits for the reconnection instead.
	RetryBackoff, MaxRetryBackoff time.Duration
	// Logger receives retry and drop reports; nil discards them.
	Logger *slog.Logger
	// StalledAfter is how long a pending message may keep failing, with no
	// acknowledgement of it, before Ready reports the publisher stalled (default
	// DefaultStalledAfter).
	StalledAfter time.Duration
	// NoStreamHint is appended to the cause Ready reports when no stream captures a
	// subject: what to do about it in the caller's words (e.g. which setting creates one).
	NoStreamHint string
	// OnRetry, if set, is called each time a message is published again with the same
	// Nats-Msg-Id (what Stats.Retries counts). It runs on the publisher's goroutine and
	// must return quickly.
	OnRetry func()
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
// with code 400.
//
// One goroutine per publisher sees every message through: nats.go's acknowledgement
// and error handlers hand it the outcomes, and it calls done, schedules retries and
// publishes again. done is therefore called on that goroutine, one call at a time and
// mostly in the order the server acknowledged the messages: it should return quickly
// (a done that blocks delays the others) and must not call Publish or Close.
type JetStream struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	watch *connWatch
	log   *slog.Logger
	drops *loglimit.Limiter // drop reports, by cause
	opts  JetStreamOptions
	retry backoff.Policy // pause before a message's next publish after a failure
	sem   chan struct{}
	wake  chan struct{} // capacity 1: events were queued for the loop

	mu     sync.Mutex
	closed bool
	live   map[*nats.Msg]*jsEntry // taken by Publish, neither settled nor acknowledged
	events []jsEvent              // outcomes waiting for the loop, in arrival order
	seq    uint64                 // Publish calls taken

	closing  chan struct{}   // closed by Close: Publish takes no more
	life     context.Context // canceled when Close stops waiting: pending are abandoned
	cancel   context.CancelFunc
	loopDone chan struct{} // closed when the loop has returned
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

// jsEntry is one message taken by Publish and not yet settled.
type jsEntry struct {
	msg  *nats.Msg
	done func(error)
	seq  uint64 // order of Publish calls: retries go out in this order

	// Guarded by JetStream.mu.
	attempt   uint32    // publishes started
	inFlight  bool      // handed to nats.go, outcome not yet claimed
	failingAt time.Time // first failed attempt; zero while none failed
	lastErr   error     // why the last attempt failed

	// Owned by whoever holds the entry out of flight: Publish before its first
	// publish, the loop afterwards.
	tried    bool      // published at least once
	failures int       // failed attempts so far: the retry backoff's attempt number
	due      time.Time // earliest next publish
}

// jsEvent is an outcome handed to the loop.
type jsEvent struct {
	e     *jsEntry
	acked bool
	err   error // why the attempt failed; nil when never tried
}

var _ Publisher = (*JetStream)(nil)

// NewJetStream returns a JetStream publisher on nc. Call Close when done with it.
func NewJetStream(nc *nats.Conn, o JetStreamOptions) (*JetStream, error) {
	if o.MaxPending < 0 || o.AckTimeout < 0 || o.RetryBackoff < 0 || o.MaxRetryBackoff < 0 || o.StalledAfter < 0 {
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
	if o.StalledAfter == 0 {
		o.StalledAfter = DefaultStalledAfter
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	life, cancel := context.WithCancel(context.Background())
	p := &JetStream{
		nc:    nc,
		log:   o.Logger,
		drops: loglimit.New(0),
		opts:  o,
		retry: backoff.Policy{Min: o.RetryBackoff, Max: o.MaxRetryBackoff},
		sem:   make(chan struct{}, o.MaxPending),
		wake:  make(chan struct{}, 1),
		// No capacity hint: MaxPending may be huge, and the map grows with what
		// is actually pending.
		live:     make(map[*nats.Msg]*jsEntry),
		closing:  make(chan struct{}),
		life:     life,
		cancel:   cancel,
		loopDone: make(chan struct{}),
	}
	// The semaphore is the real bound (a channel of empty structs: no memory per
	// slot); nats.go's own cap is set above it so that its stall (which fails after
	// 200 ms) never triggers. nats.go only compares its count of pending acks with
	// that cap and allocates nothing in proportion to it. Outcomes arrive through
	// the handlers rather than through a PubAckFuture per message.
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(asyncMaxPending(o.MaxPending)),
		jetstream.WithPublishAsyncTimeout(o.AckTimeout),
		jetstream.WithPublishAsyncAckHandler(p.acked),
		jetstream.WithPublishAsyncErrHandler(p.failedAsync))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("jetstream context: %w", err)
	}
	p.js = js
	p.watch = newConnWatch(nc)
	go p.loop()
	return p, nil
}

// Ready returns nil when the connection is up and no pending message has been failing
// for longer than StalledAfter. Otherwise it returns an error saying why: wrapping
// ErrNotConnected (see Ready), or ErrStalled with the cause in words a user can act on,
// such as no stream capturing the subject. It turns nil again once the failing
// messages are acknowledged.
func (p *JetStream) Ready() error {
	if err := Ready(p.nc); err != nil {
		return err
	}
	var oldest *jsEntry
	var cause error
	p.mu.Lock()
	for _, e := range p.live {
		if !e.failingAt.IsZero() && (oldest == nil || e.failingAt.Before(oldest.failingAt)) {
			oldest = e
		}
	}
	var since time.Duration
	var subject string
	if oldest != nil {
		since, subject, cause = time.Since(oldest.failingAt), oldest.msg.Subject, oldest.lastErr
	}
	p.mu.Unlock()
	if oldest == nil || since < p.opts.StalledAfter {
		return nil
	}
	return fmt.Errorf("%w for %s: %s", ErrStalled, since.Round(time.Second), p.cause(subject, cause))
}

// cause says in words a user acts on why publishing to subject fails with err.
func (p *JetStream) cause(subject string, err error) string {
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		msg := "no JetStream stream captures subject " + subject
		if p.opts.NoStreamHint != "" {
			msg += ": " + p.opts.NoStreamHint
		}
		return msg
	case errors.Is(err, jetstream.ErrAsyncPublishTimeout), errors.Is(err, nats.ErrTimeout):
		return "JetStream does not acknowledge publishes to " + subject + " within " + p.opts.AckTimeout.String() + " (server or stream overloaded, or the stream's leader unavailable)"
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return "JetStream refuses publishes to " + subject + ": " + apiErr.Description
	}
	return fmt.Sprintf("publishes to %s keep failing: %v", subject, err)
}

// asyncMaxPending is the cap given to nats.go: twice the publisher's bound, without
// overflowing.
func asyncMaxPending(maxPending int) int {
	if maxPending > math.MaxInt/2 {
		return math.MaxInt
	}
	return 2 * maxPending
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
	if msg.Header == nil {
		msg.Header = make(nats.Header, 1)
	}
	if msg.Header.Get(jetstream.MsgIDHeader) == "" {
		msg.Header[jetstream.MsgIDHeader] = []string{MsgID(msg.Subject, msg.Data)}
	}
	// Publish on the caller's goroutine while connected, so that messages enter NATS in
	// the order they were given; otherwise the loop publishes once reconnected.
	connected := p.nc.Status() == nats.CONNECTED
	p.pending.Add(1)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.pending.Add(-1)
		<-p.sem
		return ErrClosed
	}
	if _, dup := p.live[msg]; dup {
		// The same *nats.Msg given again while still pending: nats.go reports outcomes
		// by message, so this copy needs its own identity.
		msg = &nats.Msg{Subject: msg.Subject, Reply: msg.Reply, Header: msg.Header, Data: msg.Data}
	}
	p.seq++
	e := &jsEntry{msg: msg, done: done, seq: p.seq, tried: connected}
	p.live[msg] = e
	p.wg.Add(1)
	wake := false
	if connected {
		e.attempt, e.inFlight = 1, true
	} else {
		wake = p.postLocked(jsEvent{e: e})
	}
	p.mu.Unlock()
	if wake {
		p.signal()
	}
	if !connected {
		return nil
	}
	if _, err := p.js.PublishMsgAsync(msg); err != nil && p.claim(e, 1) {
		p.post(jsEvent{e: e, err: err})
	}
	return nil
}

// acked is nats.go's acknowledgement handler. It runs on nats.go's goroutine and so
// only hands the message to the loop.
func (p *JetStream) acked(_ jetstream.JetStream, msg *nats.Msg, _ *jetstream.PubAck) {
	p.mu.Lock()
	e := p.live[msg]
	if e == nil || !e.inFlight {
		p.mu.Unlock()
		return // not ours, or abandoned
	}
	e.inFlight = false
	delete(p.live, msg)
	wake := p.postLocked(jsEvent{e: e, acked: true})
	p.mu.Unlock()
	if wake {
		p.signal()
	}
}

// failedAsync is nats.go's error handler (no acknowledgement in time, negative
// acknowledgement, disconnection). nats.go may call it holding its own lock: it only
// hands the message to the loop.
func (p *JetStream) failedAsync(_ jetstream.JetStream, msg *nats.Msg, err error) {
	p.mu.Lock()
	e := p.live[msg]
	if e == nil || !e.inFlight {
		p.mu.Unlock()
		return
	}
	e.inFlight = false
	wake := p.postLocked(jsEvent{e: e, err: err})
	p.mu.Unlock()
	if wake {
		p.signal()
	}
}

// claim takes e back after its publish number attempt failed at once. It reports false
// when a handler has already taken it.
func (p *JetStream) claim(e *jsEntry, attempt uint32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !e.inFlight || e.attempt != attempt {
		return false
	}
	e.inFlight = false
	return true
}

// postLocked queues ev for the loop; p.mu must be held. It reports whether the loop
// needs waking: only the first event of a batch does.
func (p *JetStream) postLocked(ev jsEvent) bool {
	p.events = append(p.events, ev)
	return len(p.events) == 1
}

func (p *JetStream) post(ev jsEvent) {
	p.mu.Lock()
	wake := p.postLocked(ev)
	p.mu.Unlock()
	if wake {
		p.signal()
	}
}

func (p *JetStream) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// loop settles acknowledged messages, and publishes failed ones again when they are
// due and the connection is up, until Close abandons what is left.
func (p *JetStream) loop() {
	defer close(p.loopDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var batch []jsEvent
	var retry []*jsEntry // out of flight, waiting for their turn
	for {
		var timerC <-chan time.Time
		var changed <-chan struct{}
		if len(retry) > 0 {
			retry, timerC, changed = p.republish(retry, timer)
		}
		select {
		case <-p.wake:
		case <-timerC:
		case <-changed:
		case <-p.life.Done():
			p.abandonAll()
			return
		}
		p.mu.Lock()
		batch, p.events = p.events, batch[:0]
		p.mu.Unlock()
		for i, ev := range batch {
			if ev.acked {
				p.settle(ev.e)
			} else if p.failed(ev.e, ev.err) {
				retry = append(retry, ev.e)
			}
			batch[i] = jsEvent{}
		}
	}
}

// republish publishes again the entries of retry that are due, if the connection is
// up. It returns the entries still waiting and the channels to wait on for them: the
// timer for the next one due, or the next change of connection status.
func (p *JetStream) republish(retry []*jsEntry, timer *time.Timer) ([]*jsEntry, <-chan time.Time, <-chan struct{}) {
	changed := p.watch.nextChange()
	switch p.nc.Status() {
	case nats.CONNECTED:
	case nats.CLOSED:
		for _, e := range retry {
			p.drop(e, nats.ErrConnectionClosed)
		}
		clear(retry)
		return retry[:0], nil, nil
	default:
		return retry, nil, changed
	}
	now := time.Now()
	if !slices.ContainsFunc(retry, func(e *jsEntry) bool { return !e.due.After(now) }) {
		return retry, p.nextDue(retry, timer), nil
	}
	slices.SortFunc(retry, func(a, b *jsEntry) int { return cmp.Compare(a.seq, b.seq) })
	kept := retry[:0]
	for _, e := range retry {
		if e.due.After(now) {
			kept = append(kept, e)
			continue
		}
		if e.tried {
			p.retries.Add(1)
			if p.opts.OnRetry != nil {
				p.opts.OnRetry()
			}
		}
		e.tried = true
		p.mu.Lock()
		e.attempt++
		attempt := e.attempt
		e.inFlight = true
		p.mu.Unlock()
		if _, err := p.js.PublishMsgAsync(e.msg); err != nil && p.claim(e, attempt) && p.failed(e, err) {
			kept = append(kept, e)
		}
	}
	clear(retry[len(kept):])
	if len(kept) == 0 {
		return kept, nil, nil
	}
	return kept, p.nextDue(kept, timer), nil
}

// nextDue arms timer for the earliest due time in retry.
func (p *JetStream) nextDue(retry []*jsEntry, timer *time.Timer) <-chan time.Time {
	next := retry[0].due
	for _, e := range retry[1:] {
		if e.due.Before(next) {
			next = e.due
		}
	}
	timer.Reset(time.Until(next))
	return timer.C
}

// failed records a failed attempt of e (or, when e was never published, its wait for
// the connection). It reports whether e is to be published again; if not, it was
// dropped.
func (p *JetStream) failed(e *jsEntry, err error) bool {
	if !e.tried {
		e.due = time.Time{} // as soon as connected
		return true
	}
	p.errors.Add(1)
	if permanent(err) {
		p.drop(e, err)
		return false
	}
	p.mu.Lock()
	if e.failingAt.IsZero() {
		e.failingAt = time.Now()
	}
	e.lastErr = err
	p.mu.Unlock()
	if p.degraded.CompareAndSwap(false, true) {
		p.log.Warn("jetstream publish failed, retrying", "subject", e.msg.Subject, "error", err,
			"cause", p.cause(e.msg.Subject, err))
	} else {
		p.log.Debug("jetstream publish failed, retrying", "subject", e.msg.Subject, "error", err)
	}
	if errors.Is(err, nats.ErrDisconnected) {
		e.due = time.Time{} // as soon as reconnected
		return true
	}
	e.due = time.Now().Add(p.retry.Delay(e.failures))
	e.failures++
	return true
}

// abandonAll settles what was acknowledged and abandons every other pending message.
func (p *JetStream) abandonAll() {
	p.mu.Lock()
	events, live := p.events, p.live
	p.events, p.live = nil, nil
	for _, e := range live {
		e.inFlight = false // a publish failing at once now claims nothing
	}
	p.mu.Unlock()
	for _, ev := range events {
		if ev.acked {
			p.settle(ev.e)
		}
	}
	left := slices.SortedFunc(maps.Values(live), func(a, b *jsEntry) int { return cmp.Compare(a.seq, b.seq) })
	for _, e := range left {
		p.dropped.Add(1)
		p.abandoned.Add(1)
		p.finish(e, ErrAbandoned)
	}
}

func (p *JetStream) settle(e *jsEntry) {
	p.published.Add(1)
	if p.degraded.Load() && p.degraded.CompareAndSwap(true, false) {
		p.log.Info("jetstream publish acknowledged again")
	}
	p.finish(e, nil)
}

func (p *JetStream) drop(e *jsEntry, err error) {
	p.mu.Lock()
	delete(p.live, e.msg)
	p.mu.Unlock()
	p.dropped.Add(1)
	// done gets err: the caller counts and logs the drop for users; here it is
	// a debug line, once per cause and interval.
	if ok, suppressed := p.drops.Allow(dropKey(err)); ok {
		p.log.Debug("jetstream publish failed for good, message dropped", "subject", e.msg.Subject, "error", err, "suppressed", suppressed)
	}
	p.finish(e, err)
}

// finish releases e's place in the budget and calls its done.
func (p *JetStream) finish(e *jsEntry, err error) {
	p.pending.Add(-1)
	<-p.sem
	settle(e.done, err)
	p.wg.Done()
}

// nextChange returns a channel closed at the connection's next status change.
func (w *connWatch) nextChange() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wake
}

// dropKey names the cause of a drop for rate-limiting its log line: a small fixed
// set, so that each cause is reported on its own.
func dropKey(err error) string {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return "max_payload"
	case errors.Is(err, nats.ErrConnectionClosed):
		return "closed"
	case errors.Is(err, nats.ErrBadSubject):
		return "bad_subject"
	case errors.Is(err, nats.ErrHeadersNotSupported):
		return "headers"
	case errors.As(err, &apiErr):
		return "api_" + strconv.Itoa(int(apiErr.ErrorCode))
	}
	return "other"
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
	<-p.loopDone
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
				Name:        name,
				Description: "Datacore messages republished by datacore-bridge (subjects " + subject + ")",
				Subjects:    []string{subject},
				Storage:     jetstream.FileStorage,
				Duplicates:  DefaultDuplicateWindow,
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
