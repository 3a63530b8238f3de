package discovery

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/datacore-bridge/datacore-bridge/access"
)

// Error is a failed listing call. Err is one of the access sentinels
// (access.ErrUnauthorized, access.ErrRateLimited, …), so that a listing's
// failure is classified like an access call's. Its text never holds the token.
type Error struct {
	// Org is the organization whose listing failed.
	Org string
	// Status is the HTTP status; 0 when no response was received.
	Status int
	// Message is the server's message or a description.
	Message string
	// RetryAfter is the server's Retry-After; 0 when absent.
	RetryAfter time.Duration
	// Err is an access sentinel.
	Err error

	cause error
}

// Error returns "discovery: listing organization <org>: <what> (<status>): <message>: <what to do>".
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "discovery: listing organization %s: %s", e.Org, describe(e.Err))
	if e.Status != 0 {
		fmt.Fprintf(&b, " (%d)", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ": retry after %s", e.RetryAfter)
	}
	if h := hint(e.Err); h != "" {
		b.WriteString(": " + h)
	}
	return b.String()
}

// Unwrap returns the sentinel and the underlying error, if any.
func (e *Error) Unwrap() []error {
	out := []error{e.Err}
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

// Permanent reports whether listing again cannot help without a change of
// settings: rejected token (after a renewal), forbidden organization,
// unknown path, bad request.
func (e *Error) Permanent() bool {
	switch e.Err {
	case access.ErrUnauthorized, access.ErrForbidden, access.ErrNotFound, access.ErrBadRequest:
		return true
	}
	return false
}

// IsPermanent reports whether err, a listing's or a token's, is permanent.
func IsPermanent(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Permanent()
	}
	return access.IsPermanent(err)
}

// retryAfterOf returns the Retry-After carried by a listing's or a token's error.
func retryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	d, _ := access.RetryAfter(err)
	return d
}

// describe names what went wrong.
func describe(sentinel error) string {
	switch sentinel {
	case access.ErrUnauthorized:
		return "token rejected"
	case access.ErrForbidden:
		return "forbidden"
	case access.ErrNotFound:
		return "not found"
	case access.ErrBadRequest:
		return "request rejected"
	case access.ErrRateLimited:
		return "rate limited"
	case access.ErrUnavailable:
		return "service unavailable"
	case access.ErrMalformed:
		return "malformed response"
	}
	return "request failed"
}

// hint says what to do.
func hint(sentinel error) string {
	switch sentinel {
	case access.ErrUnauthorized:
		return "a new token was refused too: check the credentials, and that the REST API URL is of the same environment as the access API"
	case access.ErrForbidden:
		return "not entitled to this organization's fixtures: check the organization id and the sport"
	case access.ErrNotFound, access.ErrBadRequest:
		return "check the organization id, the sport and the REST API URL"
	case access.ErrRateLimited:
		return "retryable: the API quota is being spent too fast; poll less often"
	case access.ErrUnavailable:
		return "retryable"
	case access.ErrMalformed:
		return "retryable; if it persists check that the REST API URL is the Datacore REST API's"
	}
	return "retryable; check network access to the REST API"
}
