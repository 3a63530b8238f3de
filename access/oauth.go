package access

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// tokenEarlyExpiry is how long before its expiry a cached OAuth2 token is
// replaced.
const tokenEarlyExpiry = 10 * time.Second

// oauthUnauth is what to check when the token endpoint rejects the client.
const oauthUnauth = "check the OAuth2 client id, client secret and audience"

// tokenNetHint is what to do when the token endpoint cannot be reached.
const tokenNetHint = "retryable; check network access to the OAuth2 token URL"

// OAuth2Token returns a bearer-token function for Options.Token that gets
// tokens with the OAuth2 client-credentials flow from tokenURL, sending
// audience (when not empty) as an extra parameter. A token is cached and
// reused until 10 s before it expires. ctx bounds every token request for
// the life of the function (an *http.Client in ctx under oauth2.HTTPClient
// is used if present, else one with a 15 s timeout); each call also returns
// as soon as its own ctx is done. Errors are *Error and never contain the
// client secret.
func OAuth2Token(ctx context.Context, tokenURL, clientID, clientSecret, audience string) func(context.Context) (string, error) {
	cfg := &clientcredentials.Config{ClientID: clientID, ClientSecret: clientSecret, TokenURL: tokenURL}
	if audience != "" {
		cfg.EndpointParams = url.Values{"audience": {audience}}
	}
	if _, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); !ok {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: defaultHTTPTimeout})
	}
	src := oauth2.ReuseTokenSourceWithExpiry(nil, cfg.TokenSource(ctx), tokenEarlyExpiry)
	red := newRedactor(clientSecret)

	type result struct {
		tok *oauth2.Token
		err error
	}
	return func(callCtx context.Context) (string, error) {
		// src.Token takes no context: run it aside so that this call can
		// give up when callCtx is done. The request itself is bounded by
		// ctx and the HTTP client's timeout, and its token is cached.
		ch := make(chan result, 1)
		go func() {
			t, err := src.Token()
			ch <- result{t, err}
		}()
		select {
		case r := <-ch:
			if r.err != nil {
				return "", tokenError(r.err, red)
			}
			if r.tok.AccessToken == "" {
				return "", &Error{Message: "oauth2 token: empty access token", Err: ErrMalformed}
			}
			return r.tok.AccessToken, nil
		case <-callCtx.Done():
			err := callCtx.Err()
			return "", &Error{Message: "oauth2 token: " + err.Error(), Err: ErrTransport, hint: tokenNetHint, cause: err}
		}
	}
}

// tokenError turns a token request's error into an *Error without the
// response body or the client secret.
func tokenError(err error, red redactor) *Error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return &Error{Message: "oauth2 token: " + clean(red.redact(err.Error())), Err: ErrTransport, hint: tokenNetHint, cause: err}
	}
	status := re.Response.StatusCode
	msg := "oauth2 token"
	if re.ErrorCode != "" {
		msg += ": " + re.ErrorCode
	}
	if re.ErrorDescription != "" {
		msg += ": " + re.ErrorDescription
	}
	e := &Error{Status: status, Message: clean(red.redact(msg)), Err: statusSentinel(status)}
	switch {
	case status == http.StatusBadRequest && (re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client"),
		status == http.StatusUnauthorized, status == http.StatusForbidden:
		e.Err = ErrUnauthorized
		e.hint = oauthUnauth
	case e.Err == ErrBadRequest || e.Err == ErrNotFound:
		e.hint = "check the OAuth2 token URL and audience"
	default:
		e.hint = hintFor(e.Err, "", "")
	}
	if d, ok := parseRetryAfter(re.Response.Header.Get("Retry-After"), time.Now()); ok && !e.Permanent() {
		e.RetryAfter = d
	}
	return e
}
