// Package backoff is the one exponential backoff of the bridge: every retry
// loop (stream reconnects, JetStream republishes, NATS credential refusals,
// stream creation) waits with it.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy is exponential backoff with jitter and a cap: the wait before retry
// number n (counted from 0) is Min doubled n times, at most Max, then
// jittered down into its upper half, so that retries spread out without ever
// coming at once.
type Policy struct {
	// Min is the wait before the first retry (before jitter). It must be positive.
	Min time.Duration
	// Max caps the wait (before jitter); a Max below Min means Min.
	Max time.Duration
}

// Cap returns the wait before retry number attempt, before jitter:
// Min<<attempt, at most Max.
func (p Policy) Cap(attempt int) time.Duration {
	hi := max(p.Max, p.Min)
	d := p.Min << min(max(attempt, 0), 62)
	if d <= 0 || d > hi || d>>min(max(attempt, 0), 62) != p.Min {
		return hi // overflowed or past the cap
	}
	return d
}

// Delay returns the jittered wait before retry number attempt: a value in
// [Cap(attempt)/2, Cap(attempt)].
func (p Policy) Delay(attempt int) time.Duration {
	d := p.Cap(attempt)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// Backoff counts the failed attempts of one retry loop. The zero value is
// not usable: make one with New. It is not safe for concurrent use.
type Backoff struct {
	policy  Policy
	attempt int
}

// New returns a Backoff for p with no failed attempt yet.
func New(p Policy) *Backoff { return &Backoff{policy: p} }

// Next returns how long to wait before the next attempt and counts one more
// failed attempt.
func (b *Backoff) Next() time.Duration {
	d := b.policy.Delay(b.attempt)
	if b.attempt < 62 {
		b.attempt++
	}
	return d
}

// Attempts returns the failed attempts counted since the last Reset.
func (b *Backoff) Attempts() int { return b.attempt }

// Reset forgets the failed attempts, after a success.
func (b *Backoff) Reset() { b.attempt = 0 }
