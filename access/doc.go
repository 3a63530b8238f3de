// Package access is a client for the Datacore access API.
//
// An access call exchanges the customer's credentials, a fixture or venue ID
// and a list of scopes for a Grant: a signed MQTT-over-WebSocket URL, the MQTT
// client id to use with it and the topics that may be subscribed to. The
// signed URL is a secret: it is never logged nor put into an error; log
// Grant.Host, Grant.ClientID and Grant.ExpiresAt instead.
//
// Every failed call returns an *Error that wraps exactly one of the sentinel
// errors (ErrUnauthorized, ErrForbidden, ErrNotFound, ErrBadRequest,
// ErrRateLimited, ErrUnavailable, ErrMalformed, ErrTransport), so callers can
// tell permanent failures (bad credentials, unknown fixture, scope not
// granted) from retryable ones (rate limits, 5xx, timeouts) with IsPermanent,
// honour a server's Retry-After with RetryAfter, and label metrics with
// Outcome. Error strings never contain the credential secret, the user
// identity token, a bearer token, the request body or a signed URL.
package access
