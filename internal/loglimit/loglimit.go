// Package loglimit bounds what outside input can do to the logs: how often a
// repeated line is written (Limiter) and how long a string taken from outside
// may be (Truncate).
package loglimit

import (
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// DefaultEvery is the interval a Limiter made by New(0) lets one line through per key.
const DefaultEvery = time.Minute

// maxKeys bounds the keys a Limiter remembers; past it, it forgets them all.
const maxKeys = 1024

// Limiter lets the first event of each key through, then at most one per
// interval, and says how many were held back in between. It is safe for
// concurrent use. Keys should come from a small fixed set (a reason, a stream
// id), never from message content.
type Limiter struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	keys map[string]*limitEntry
}

type limitEntry struct {
	last       time.Time
	suppressed uint64
}

// New returns a Limiter that lets one event per key through every interval
// (DefaultEvery when every is 0 or negative).
func New(every time.Duration) *Limiter {
	if every <= 0 {
		every = DefaultEvery
	}
	return &Limiter{every: every, now: time.Now, keys: make(map[string]*limitEntry)}
}

// Allow reports whether an event of key may be logged now. When it may,
// suppressed is the number of events of key held back since the last one let
// through (log it, e.g. as "suppressed", so that nothing goes uncounted).
func (l *Limiter) Allow(key string) (ok bool, suppressed uint64) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[key]
	if e == nil {
		if len(l.keys) >= maxKeys {
			clear(l.keys)
		}
		l.keys[key] = &limitEntry{last: now}
		return true, 0
	}
	if now.Sub(e.last) < l.every {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	return true, n
}

// Truncate returns s cut to at most n bytes (on a rune boundary), followed by
// a note of the original length when it was cut. Use it for every string that
// comes from outside (a request path, a topic) before it is logged.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}
