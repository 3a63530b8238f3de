package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/loglimit"
)

// TimeLayout is how the REST API writes times: ISO-8601 without a zone, in UTC.
const TimeLayout = "2006-01-02T15:04:05"

const (
	// defaultPageSize is the limit asked for per page (the API allows 1000).
	defaultPageSize = 100
	// maxPages bounds the pages read for one listing, against a server whose
	// links never end.
	maxPages = 1000
	// maxBody is the most of a response body that is read.
	maxBody = 8 << 20
	// tokenEarly is the most a token is renewed before it expires; for short
	// tokens a fifth of their life.
	tokenEarly = 30 * time.Second
	// httpTimeout bounds one REST call when Options.HTTPClient is nil.
	httpTimeout = 30 * time.Second
)

// Tokener gets REST API tokens. *access.Client is one. Its errors are
// classified with the access sentinels (access.ErrUnauthorized, …).
type Tokener interface {
	// RESTToken asks for a token for sport and the organizations.
	RESTToken(ctx context.Context, sport string, orgs []string) (access.Token, error)
}

// Fixture is one row of an organization's fixtures listing.
type Fixture struct {
	FixtureID    string `json:"fixtureId"`
	Status       string `json:"status"`
	StartTimeUTC string `json:"startTimeUTC"`
	VenueID      string `json:"venueId"`
}

// Start returns the fixture's start time, and false when it is missing or
// does not parse.
func (f Fixture) Start() (time.Time, bool) {
	for _, layout := range []string{TimeLayout, "2006-01-02T15:04:05.999999999", time.RFC3339Nano} {
		if t, err := time.Parse(layout, f.StartTimeUTC); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// UnmarshalJSON accepts a fixture or venue id given as a string or a number.
func (f *Fixture) UnmarshalJSON(b []byte) error {
	var raw struct {
		FixtureID    json.RawMessage `json:"fixtureId"`
		Status       string          `json:"status"`
		StartTimeUTC string          `json:"startTimeUTC"`
		VenueID      json.RawMessage `json:"venueId"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*f = Fixture{Status: raw.Status, StartTimeUTC: raw.StartTimeUTC, FixtureID: idString(raw.FixtureID), VenueID: idString(raw.VenueID)}
	return nil
}

// idString returns a JSON string's or number's text, else "".
func idString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// page is one page of a listing.
type page struct {
	Meta struct {
		Count  *int `json:"count"`
		Limit  int  `json:"limit"`
		Offset int  `json:"offset"`
	} `json:"meta"`
	Links struct {
		Next string `json:"next"`
	} `json:"links"`
	Data []Fixture `json:"data"`
}

// ClientOptions configure a Client.
type ClientOptions struct {
	// BaseURL is the REST API base, including /v1 (see access.RESTURLFor).
	BaseURL string
	// Sport is the sport in listing paths and token requests.
	Sport string
	// Organizations are the organizations a token is asked for.
	Organizations []string
	// Tokens gets tokens.
	Tokens Tokener
	// HTTPClient makes the listing calls; nil means a client with a 30 s
	// timeout that does not follow redirects (a redirect would resend the token).
	HTTPClient *http.Client
	// PageSize is the limit asked for per page; default 100, at most 1000.
	PageSize int
}

// Client lists organizations' fixtures through the REST API. It is safe for
// concurrent use.
type Client struct {
	base   *url.URL
	sport  string
	orgs   []string
	tokens Tokener
	http   *http.Client
	limit  int

	mu    sync.Mutex
	tok   access.Token
	got   time.Time // when tok arrived
	calls int       // token calls made, for tests and logs
}

// CheckBaseURL checks a REST API base URL and returns it without a trailing
// '/': the same rule as the access API's (access.CheckBaseURL).
func CheckBaseURL(s string) (string, error) {
	return access.CheckBaseURL(s)
}

// NewClient checks the options and returns a Client; it makes no call.
func NewClient(o ClientOptions) (*Client, error) {
	base, err := CheckBaseURL(o.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("discovery: REST URL %w", err)
	}
	u, _ := url.Parse(base)
	switch {
	case o.Sport == "":
		return nil, errors.New("discovery: Sport is required")
	case len(o.Organizations) == 0:
		return nil, errors.New("discovery: no organizations")
	case o.Tokens == nil:
		return nil, errors.New("discovery: Tokens is required")
	}
	for _, org := range o.Organizations {
		if err := ValidateOrganization(org); err != nil {
			return nil, err
		}
	}
	if o.PageSize <= 0 {
		o.PageSize = defaultPageSize
	}
	o.PageSize = min(o.PageSize, 1000)
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{
			Timeout: httpTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	return &Client{base: u, sport: o.Sport, orgs: append([]string(nil), o.Organizations...), tokens: o.Tokens, http: hc, limit: o.PageSize}, nil
}

// TokenCalls returns how many tokens the Client has asked for.
func (c *Client) TokenCalls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// token returns the cached token while it is fresh, else a new one. A
// token without a lifetime is kept until the API refuses it.
func (c *Client) token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok.Value != "" {
		if c.tok.ExpiresAt.IsZero() {
			return c.tok.Value, nil
		}
		early := min(tokenEarly, c.tok.ExpiresAt.Sub(c.got)/5)
		if time.Now().Before(c.tok.ExpiresAt.Add(-early)) {
			return c.tok.Value, nil
		}
	}
	c.calls++
	tok, err := c.tokens.RESTToken(ctx, c.sport, c.orgs)
	if err != nil {
		c.tok = access.Token{}
		return "", fmt.Errorf("discovery: REST token: %w", err)
	}
	c.tok, c.got = tok, time.Now()
	return tok.Value, nil
}

// dropToken forgets the cached token if it is still value.
func (c *Client) dropToken(value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok.Value == value {
		c.tok = access.Token{}
	}
}

// List returns every fixture of org that the REST API lists between from and
// to, reading every page. A 401 gets a new token once and retries the page.
// Errors are *Error (or wrap the token's *access.Error); a failed page fails
// the whole listing.
func (c *Client) List(ctx context.Context, org string, from, to time.Time) ([]Fixture, error) {
	first := c.base.JoinPath(c.sport, "o", org, "fixtures")
	q := url.Values{}
	q.Set("fromTimeUTC", from.UTC().Format(TimeLayout))
	q.Set("toTimeUTC", to.UTC().Format(TimeLayout))
	q.Set("limit", strconv.Itoa(c.limit))
	q.Set("offset", "0")
	first.RawQuery = q.Encode()

	var out []Fixture
	next := first
	seen := map[string]bool{}
	for range maxPages {
		if seen[next.String()] {
			return nil, &Error{Org: org, Message: "the next page link repeats a page", Err: access.ErrMalformed}
		}
		seen[next.String()] = true
		p, err := c.page(ctx, org, next)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Data...)
		if p.Links.Next != "" {
			u, err := next.Parse(p.Links.Next)
			if err != nil || u.Scheme != c.base.Scheme || u.Host != c.base.Host {
				// The token goes to the REST host only.
				return nil, &Error{Org: org, Message: "the next page link is not on the REST API host", Err: access.ErrMalformed}
			}
			next = u
			continue
		}
		offset, _ := strconv.Atoi(next.Query().Get("offset"))
		if p.Meta.Count == nil || len(p.Data) == 0 || offset+len(p.Data) >= *p.Meta.Count {
			return out, nil
		}
		u := *next
		q := u.Query()
		q.Set("offset", strconv.Itoa(offset+len(p.Data)))
		u.RawQuery = q.Encode()
		next = &u
	}
	return nil, &Error{Org: org, Message: fmt.Sprintf("more than %d pages", maxPages), Err: access.ErrMalformed}
}

// page gets one page, renewing the token once on a 401.
func (c *Client) page(ctx context.Context, org string, u *url.URL) (*page, error) {
	for attempt := 0; ; attempt++ {
		tok, err := c.token(ctx)
		if err != nil {
			return nil, err
		}
		p, err := c.get(ctx, org, u, tok)
		var e *Error
		if attempt == 0 && errors.As(err, &e) && e.Status == http.StatusUnauthorized {
			c.dropToken(tok)
			continue
		}
		return p, err
	}
}

// get makes one listing call with tok.
func (c *Client) get(ctx context.Context, org string, u *url.URL, tok string) (*page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &Error{Org: org, Message: "cannot build request", Err: access.ErrTransport, cause: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "datacore-bridge")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &Error{Org: org, Message: strings.ReplaceAll(err.Error(), tok, "[REDACTED]"), Err: access.ErrTransport, cause: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if resp.StatusCode != http.StatusOK {
		e := &Error{Org: org, Status: resp.StatusCode, Err: statusSentinel(resp.StatusCode), Message: serverMessage(resp.Status, data, tok)}
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok && !e.Permanent() {
			e.RetryAfter = d
		}
		return nil, e
	}
	switch {
	case err != nil:
		return nil, &Error{Org: org, Status: resp.StatusCode, Message: "reading the listing", Err: access.ErrTransport, cause: err}
	case len(data) > maxBody:
		return nil, &Error{Org: org, Status: resp.StatusCode, Message: "listing page larger than 8 MiB", Err: access.ErrMalformed}
	}
	var p page
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, &Error{Org: org, Status: resp.StatusCode, Message: "listing is not the expected JSON", Err: access.ErrMalformed}
	}
	return &p, nil
}

// statusSentinel classifies a listing's non-200 status.
func statusSentinel(status int) error {
	switch {
	case status == http.StatusUnauthorized:
		return access.ErrUnauthorized
	case status == http.StatusForbidden:
		return access.ErrForbidden
	case status == http.StatusNotFound:
		return access.ErrNotFound
	case status == http.StatusTooManyRequests:
		return access.ErrRateLimited
	case status == http.StatusRequestTimeout:
		return access.ErrUnavailable
	case status >= 400 && status < 500:
		return access.ErrBadRequest
	}
	return access.ErrUnavailable
}

// serverMessage is a failed call's message (message, error.message or the
// status), one short line without the token.
func serverMessage(status string, data []byte, tok string) string {
	var body struct {
		Message string          `json:"message"`
		Error   json.RawMessage `json:"error"`
	}
	msg := status
	if json.Unmarshal(data, &body) == nil {
		var nested struct {
			Message string `json:"message"`
		}
		switch {
		case body.Message != "":
			msg = body.Message
		case json.Unmarshal(body.Error, &nested) == nil && nested.Message != "":
			msg = nested.Message
		}
	}
	msg = strings.ReplaceAll(msg, tok, "[REDACTED]")
	msg = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
	return strings.TrimSpace(loglimit.Truncate(msg, 300))
}

// maxRetryAfter caps a server's Retry-After.
const maxRetryAfter = time.Hour

// retryAfter parses Retry-After: seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 {
		return min(time.Duration(secs)*time.Second, maxRetryAfter), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// Errors of ValidateOrganization.
var (
	// ErrInvalidOrganization is returned for an organization id that cannot
	// name an organization in a REST API path.
	ErrInvalidOrganization = errors.New("discovery: invalid organization id")
)

// ValidateOrganization reports why id cannot name an organization, wrapping
// ErrInvalidOrganization, or returns nil: it follows the rule for fixture IDs
// (fixtures.ValidateID: no whitespace, control characters, '/', '+' or '#')
// and, as it is a path segment, holds no '?', '%' or '\' and is not "." or "..".
func ValidateOrganization(id string) error {
	if err := fixtures.ValidateID(id); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOrganization, err)
	}
	if id == "." || id == ".." || strings.ContainsAny(id, `?%\`) {
		return fmt.Errorf("%w: %q is not a URL path segment", ErrInvalidOrganization, id)
	}
	return nil
}
