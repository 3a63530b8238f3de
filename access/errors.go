package access

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/datacore-bridge/datacore-bridge/internal/redact"
)

// Sentinel errors wrapped by *Error; check them with errors.Is.
var (
	// ErrUnauthorized means the credentials were rejected (401): permanent.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden means a scope is not granted or the account is not
	// entitled to the stream (403): permanent.
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound means the fixture or venue is unknown (404): permanent.
	ErrNotFound = errors.New("not found")
	// ErrBadRequest means the request was invalid (400, 422 and other 4xx): permanent.
	ErrBadRequest = errors.New("bad request")
	// ErrRateLimited means too many calls (429): retry, after RetryAfter if set.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable means a server error (5xx) or an unexpected status: retryable.
	ErrUnavailable = errors.New("service unavailable")
	// ErrMalformed means a 200 response that could not be used: retryable.
	ErrMalformed = errors.New("malformed response")
	// ErrTransport means the call did not complete (network, timeout,
	// cancelled context): retryable.
	ErrTransport = errors.New("transport")

	// errTooLarge reports a response body over maxBodySize (internal).
	errTooLarge = errors.New("body too large")
)

// maxRetryAfter caps a server's Retry-After.
const maxRetryAfter = 24 * time.Hour

// Error is a failed access call. Its Error string says what went wrong and
// what to do, and never contains a secret.
type Error struct {
	// Status is the HTTP status; 0 when no response was received.
	Status int
	// Message is the server's message (secrets redacted) or a description.
	Message string
	// RetryAfter is the server's Retry-After; 0 when absent.
	RetryAfter time.Duration
	// Err is one of the sentinel errors.
	Err error

	hint  string // what to do
	cause error  // underlying error, e.g. a *url.Error or context.DeadlineExceeded
}

// Error returns "access: <what> (<status>): <message>: <what to do>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("access: ")
	b.WriteString(describe(e.Err))
	if e.Status != 0 {
		fmt.Fprintf(&b, " (%d)", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ": retry after %s", e.RetryAfter)
	}
	hint := e.hint
	if hint == "" {
		hint = hintFor(e.Err, "", "check the credentials")
	}
	if hint != "" {
		b.WriteString(": ")
		b.WriteString(hint)
	}
	return b.String()
}

// Unwrap returns the sentinel and, when there is one, the underlying error
// (so errors.Is(err, context.DeadlineExceeded) works).
func (e *Error) Unwrap() []error {
	out := make([]error, 0, 2)
	if e.Err != nil {
		out = append(out, e.Err)
	}
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

// Permanent reports whether retrying the same call cannot help: rejected
// credentials, forbidden scope, unknown fixture or venue, bad request.
// Rate limits, server errors, malformed responses and transport errors are
// retryable.
func (e *Error) Permanent() bool {
	switch e.Err {
	case ErrUnauthorized, ErrForbidden, ErrNotFound, ErrBadRequest:
		return true
	}
	return false
}

// IsPermanent reports whether err is an *Error that is Permanent.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent()
}

// RetryAfter returns the server's Retry-After carried by err, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

// Outcome returns a metrics label for the result of an access call: "ok",
// "unauthorized", "forbidden", "not_found", "bad_request", "rate_limited",
// "server_error", "malformed" or "transport" (also for errors not from this
// package).
func Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, ErrForbidden):
		return "forbidden"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrBadRequest):
		return "bad_request"
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, ErrUnavailable):
		return "server_error"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	}
	return "transport"
}

// describe names what went wrong for a sentinel.
func describe(sentinel error) string {
	switch sentinel {
	case ErrUnauthorized:
		return "credentials rejected"
	case ErrForbidden:
		return "forbidden"
	case ErrNotFound:
		return "not found"
	case ErrBadRequest:
		return "request rejected"
	case ErrRateLimited:
		return "rate limited"
	case ErrUnavailable:
		return "service unavailable"
	case ErrMalformed:
		return "malformed response"
	case ErrTransport:
		return "request failed"
	}
	return "call failed"
}

// hintFor says what to do about a sentinel for a stream kind ("" for a
// specific-topics call); unauth is what to check when credentials are rejected.
func hintFor(sentinel error, kind Kind, unauth string) string {
	what, scopes := "stream", "the requested scopes"
	switch kind {
	case Fixture:
		what, scopes = "fixture", "the fixture scopes asked for"
	case Venue:
		what, scopes = "venue", "the venue scopes asked for"
	}
	switch sentinel {
	case ErrUnauthorized:
		return unauth
	case ErrForbidden:
		return "scope not granted or not entitled to this " + what + ": remove the scope from " + scopes + ", or ask for it to be granted"
	case ErrNotFound:
		if kind == "" {
			return "check the topics and the access API URL (its environment)"
		}
		return "check the " + what + " id and the access API URL (its environment)"
	case ErrBadRequest:
		if kind == "" {
			return "check the topics and scopes"
		}
		return "check the " + what + " id, the sport and " + scopes
	case ErrRateLimited:
		return "retryable: slow down"
	case ErrUnavailable:
		return "retryable"
	case ErrMalformed:
		return "retryable; if it persists check that the base URL is the access API's"
	case ErrTransport:
		return "retryable; check network access to the access API"
	}
	return ""
}

// statusSentinel maps a non-200 HTTP status to a sentinel.
func statusSentinel(status int) error {
	switch {
	case status == http.StatusUnauthorized:
		return ErrUnauthorized
	case status == http.StatusForbidden:
		return ErrForbidden
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status == http.StatusRequestTimeout:
		return ErrUnavailable
	case status >= 400 && status < 500:
		return ErrBadRequest
	}
	// 5xx, and statuses the API never sends (other 2xx, 3xx).
	return ErrUnavailable
}

// parseRetryAfter parses a Retry-After header: delay seconds or an HTTP date
// (relative to now). A date in the past gives 0, true.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), maxRetryAfter), true
}

// redactor removes secret values from text taken from elsewhere (a server's
// message, an underlying error): every occurrence of a secret, raw, JSON-,
// query- or path-escaped, and the value of every X-Amz-* query parameter.
type redactor struct{ secrets redact.Secrets }

// newRedactor returns a redactor for the values; empty ones are ignored.
func newRedactor(values ...string) redactor {
	return redactor{secrets: redact.NewSecrets(values...)}
}

// redact returns s with every secret and signed query value replaced with
// "[REDACTED]".
func (r redactor) redact(s string) string {
	return redact.SignedQuery(r.secrets.String(s))
}
