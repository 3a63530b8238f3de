package access

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Production, nonprod and sandpit Datacore REST API base URLs, including the
// /v1 prefix. The REST API lists an organization's fixtures; its tokens come
// from the access API (see Client.RESTToken).
const (
	ProductionRESTURL = "https://api.dc.connect.sportradar.com/v1"
	NonprodRESTURL    = "https://api.dc.stg.connect-nonprod.sportradar.dev/v1"
	SandpitRESTURL    = "https://api.dc.dev.connect-nonprod.sportradar.dev/v1"
)

// RESTURLFor returns the REST API base URL of a Datacore environment:
// "production", "nonprod" or "sandpit".
func RESTURLFor(env string) (string, error) {
	base, err := BaseURLFor(env)
	if err != nil {
		return "", err
	}
	switch base {
	case NonprodBaseURL:
		return NonprodRESTURL, nil
	case SandpitBaseURL:
		return SandpitRESTURL, nil
	}
	return ProductionRESTURL, nil
}

// Token is a bearer token for the Datacore REST API. Value is a secret.
type Token struct {
	// Value is the token: a secret, never logged.
	Value string
	// Type is the token type the service names, e.g. "bearer".
	Type string
	// ExpiresAt is when the token expires, on the local clock; zero when the
	// answer gave no lifetime.
	ExpiresAt time.Time
}

// restTokenBody is the body of a REST token call.
type restTokenBody struct {
	Sport        string `json:"sport"`
	Organization struct {
		ID []string `json:"id"`
	} `json:"organization"`
	credentialFields
}

// restTokenResponse is a successful REST token call's body. expires_in is
// accepted as well as expiresIn.
type restTokenResponse struct {
	Data *struct {
		Token      string       `json:"token"`
		TokenType  string       `json:"tokenType"`
		ExpiresIn  *json.Number `json:"expiresIn"`
		ExpiresIn2 *json.Number `json:"expires_in"`
	} `json:"data"`
}

// restForbiddenHint is what to do when a REST token is refused with 403.
const restForbiddenHint = "not entitled to these organizations: check the organization ids and the sport, or ask for access to them"

// RESTToken asks for a Datacore REST API token for sport and the given
// organizations with POST {base}/oauth2/rest/token, sending the client's
// credentials (and its bearer token, when Options.Token is set), paced like
// every call of the Client. Errors are *Error, classified like those of
// Access: 401 and 403 are permanent; 429 (with its Retry-After), 5xx,
// malformed answers and transport failures are retryable. Neither the token
// nor a secret appears in an error.
func (c *Client) RESTToken(ctx context.Context, sport string, orgs []string) (Token, error) {
	switch {
	case sport == "":
		return Token{}, c.invalid("", "empty sport")
	case len(orgs) == 0:
		return Token{}, c.invalid("", "no organizations")
	}
	body := restTokenBody{Sport: sport, credentialFields: c.fields()}
	body.Organization.ID = orgs
	data, received, _, err := c.post(ctx, "/oauth2/rest/token", body, "")
	if err != nil {
		var e *Error
		if errors.As(err, &e) && errors.Is(e.Err, ErrForbidden) {
			e.hint = restForbiddenHint
		}
		return Token{}, err
	}
	var resp restTokenResponse
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&resp); err != nil {
		return Token{}, c.newError(http.StatusOK, ErrMalformed, "", "rest token response is not valid JSON", nil)
	}
	d := resp.Data
	if d == nil || d.Token == "" {
		return Token{}, c.newError(http.StatusOK, ErrMalformed, "", "rest token response has no token", nil)
	}
	tok := Token{Value: d.Token, Type: d.TokenType}
	n := d.ExpiresIn
	if n == nil {
		n = d.ExpiresIn2
	}
	if n != nil {
		secs, err := n.Float64()
		if err != nil || secs < 0 {
			return Token{}, c.newError(http.StatusOK, ErrMalformed, "", "rest token response has a bad expiresIn", nil)
		}
		tok.ExpiresAt = received.Add(time.Duration(secs * float64(time.Second)))
	}
	return tok, nil
}
