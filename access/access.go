package access

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/datacore-bridge/datacore-bridge/internal/redact"
)

// Kind is the kind of stream an access call is for.
type Kind string

// The kinds of stream the access API grants.
const (
	Fixture Kind = "fixture"
	Venue   Kind = "venue"
)

// Production, nonprod and sandpit access API base URLs, including the /v1 prefix.
const (
	ProductionBaseURL = "https://token.connect.sportradar.com/v1"
	NonprodBaseURL    = "https://token.stg.connect-nonprod.sportradar.dev/v1"
	SandpitBaseURL    = "https://token.dev.connect-nonprod.sportradar.dev/v1"
)

const (
	// userAgent is sent on every access call.
	userAgent = "datacore-bridge"
	// defaultHTTPTimeout bounds one access call when Options.HTTPClient is nil.
	defaultHTTPTimeout = 15 * time.Second
	// maxBodySize is the most of a response body that is read.
	maxBodySize = 1 << 20
)

// Credentials are the customer's credentials for the access API: either an
// application credential (CredentialID and CredentialSecret) or an individual
// user's (UserIdentityToken and ApplicationID). CredentialSecret and
// UserIdentityToken are secrets.
type Credentials struct {
	CredentialID      string
	CredentialSecret  string
	UserIdentityToken string
	ApplicationID     string
}

// user reports whether c holds individual-user credentials.
func (c Credentials) user() bool {
	return c.UserIdentityToken != "" || c.ApplicationID != ""
}

// Errors of Credentials.Validate, wrapped in a *CredentialsError.
var (
	// ErrNoCredentials means no credential of either kind is set.
	ErrNoCredentials = errors.New("no credentials: set a credential id and secret, or a user identity token and application id")
	// ErrMixedCredentials means application and individual-user credentials
	// are both (partly) set.
	ErrMixedCredentials = errors.New("application credentials (credential id and secret) and individual-user credentials (user identity token and application id) are both set: set one kind")
	// ErrIncompleteCredentials means one half of a pair is set without the
	// other; CredentialsError.Field names the empty one.
	ErrIncompleteCredentials = errors.New("incomplete credentials")
)

// CredentialsError says what is wrong with Credentials and, for an
// incomplete pair, which field is empty, so that a caller can name its own
// setting for it. Its text never holds a secret.
type CredentialsError struct {
	// Field is the Credentials field at fault: CredentialID,
	// CredentialSecret, UserIdentityToken or ApplicationID; for
	// ErrNoCredentials CredentialID, for ErrMixedCredentials
	// UserIdentityToken.
	Field string
	// Err is ErrNoCredentials, ErrMixedCredentials or ErrIncompleteCredentials.
	Err error
}

// fieldNames are the words for each Credentials field in errors.
var fieldNames = map[string]string{
	"CredentialID":      "credential id",
	"CredentialSecret":  "credential secret",
	"UserIdentityToken": "user identity token",
	"ApplicationID":     "application id",
}

// Error returns "access: credentials: " and what is wrong, e.g.
// "access: credentials: credential secret is empty".
func (e *CredentialsError) Error() string {
	if errors.Is(e.Err, ErrIncompleteCredentials) {
		return "access: credentials: " + fieldNames[e.Field] + " is empty"
	}
	return "access: credentials: " + e.Err.Error()
}

// Unwrap returns Err.
func (e *CredentialsError) Unwrap() error { return e.Err }

// Validate checks that c holds exactly one complete kind of credentials. Its
// error is a *CredentialsError.
func (c Credentials) Validate() error {
	app := c.CredentialID != "" || c.CredentialSecret != ""
	switch {
	case app && c.user():
		return &CredentialsError{Field: "UserIdentityToken", Err: ErrMixedCredentials}
	case app && c.CredentialID == "":
		return &CredentialsError{Field: "CredentialID", Err: ErrIncompleteCredentials}
	case app && c.CredentialSecret == "":
		return &CredentialsError{Field: "CredentialSecret", Err: ErrIncompleteCredentials}
	case c.user() && c.UserIdentityToken == "":
		return &CredentialsError{Field: "UserIdentityToken", Err: ErrIncompleteCredentials}
	case c.user() && c.ApplicationID == "":
		return &CredentialsError{Field: "ApplicationID", Err: ErrIncompleteCredentials}
	case !app && !c.user():
		return &CredentialsError{Field: "CredentialID", Err: ErrNoCredentials}
	}
	return nil
}

// Request asks for access to one fixture's or venue's stream.
type Request struct {
	Kind        Kind
	ID          string
	Sport       string
	Scopes      []string
	IncludePort bool
}

// Topic is one MQTT topic granted by an access call. Topic names are opaque
// and may change between calls: use Scope to tell topics apart.
type Topic struct {
	Topic      string `json:"topic"`
	Scope      string `json:"scope"`
	Permission string `json:"permission"`
}

// Grant is the result of a successful access call.
type Grant struct {
	// URL is the signed WebSocket URL: a secret, never logged.
	URL      string
	ClientID string
	Topics   []Topic
	// IssuedAt is the URL's X-Amz-Date, else the time the grant was
	// received; on the local clock (see Skew).
	IssuedAt time.Time
	// ExpiresAt is X-Amz-Date plus X-Amz-Expires, on the local clock (see
	// Skew); zero when unknown.
	ExpiresAt time.Time
	// ServerDate is the access response's Date header; zero when absent or
	// unparsable.
	ServerDate time.Time
	// Skew is how far the service's clock is ahead of the local one (negative:
	// behind), measured from ServerDate (or, without it, from an X-Amz-Date
	// in the future) against the time the response arrived. It is zero when
	// unknown or within the Date header's one-second resolution. When it is
	// not zero, IssuedAt and ExpiresAt have been moved by it onto the local
	// clock, so that a node whose clock is off does not see a fresh grant as
	// expired (or an expired one as fresh).
	Skew time.Duration
}

// Host returns the host (and port, if any) of the grant's URL, which is safe
// to log; it returns "" when the URL does not parse.
func (g Grant) Host() string {
	u, err := url.Parse(g.URL)
	if err != nil {
		return ""
	}
	return u.Host
}

// ReadTopics returns the topics whose permission is "read", in order.
func (g Grant) ReadTopics() []Topic {
	var out []Topic
	for _, t := range g.Topics {
		if t.Permission == "read" {
			out = append(out, t)
		}
	}
	return out
}

// Options configure a Client.
type Options struct {
	// BaseURL is the access API base, including /v1 (see BaseURLFor).
	BaseURL     string
	Credentials Credentials
	// HTTPClient makes the calls; nil means a client with a 15 s timeout
	// that does not follow redirects (a redirect would resend the credentials).
	HTTPClient *http.Client
	// Token, when set, is called before every access call for a bearer
	// token (OAuth2, see OAuth2Token) sent in the Authorization header.
	Token func(ctx context.Context) (string, error)
	// Rate paces the calls made through the Client, over all its users: at
	// most Burst at once, then Rate per second (a token bucket). Each call
	// waits for its turn until its context is done; the wait is not a
	// failure. Zero: calls are not paced.
	Rate rate.Limit
	// Burst is the token bucket's size; with Rate set, at least 1 (default 1).
	Burst int
	// UnauthorizedHint is what the error of a call whose credentials are
	// rejected (401) says to check, e.g. the settings that hold them; empty
	// means a hint naming the Credentials fields in use.
	UnauthorizedHint string
}

// Client calls the Datacore access API. It is safe for concurrent use.
type Client struct {
	base   string
	creds  Credentials
	http   *http.Client
	token  func(ctx context.Context) (string, error)
	unauth string // what to check when the credentials are rejected
	pace   *rate.Limiter
}

// New returns a Client for opts. It checks the base URL (CheckBaseURL) and the
// credentials but makes no call.
func New(opts Options) (*Client, error) {
	base, err := CheckBaseURL(opts.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("access: base URL %w", err)
	}
	if err := opts.Credentials.Validate(); err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{
			Timeout: defaultHTTPTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	unauth := opts.UnauthorizedHint
	if unauth == "" {
		unauth = "check the credential id and secret"
		if opts.Credentials.user() {
			unauth = "check the user identity token and application id"
		}
		if opts.Token != nil {
			unauth += ", and the OAuth2 client settings"
		}
	}
	var pace *rate.Limiter
	switch {
	case opts.Rate < 0:
		return nil, errors.New("access: Rate must not be negative")
	case opts.Rate > 0:
		pace = rate.NewLimiter(opts.Rate, max(opts.Burst, 1))
	}
	return &Client{
		pace:   pace,
		base:   base,
		creds:  opts.Credentials,
		http:   hc,
		token:  opts.Token,
		unauth: unauth,
	}, nil
}

// CheckBaseURL checks an access API base URL and returns it without trailing
// '/'. The base must be an absolute http or https URL with a host, and carry
// no user information (credentials go in the request body, never in a URL
// that may be logged), no query and no fragment. Its errors never quote the
// URL, which may hold a password.
func CheckBaseURL(s string) (string, error) {
	u, err := checkHTTPURL(s)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", errors.New("must not have a query or fragment")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// CheckTokenURL checks an OAuth2 token endpoint (see OAuth2Token): an absolute
// http or https URL with a host and no user information (the client id and
// secret are sent in the request, never in a URL that may be logged). Its
// errors never quote the URL.
func CheckTokenURL(s string) error {
	_, err := checkHTTPURL(s)
	return err
}

// checkHTTPURL parses s as an absolute http or https URL with a host and
// without user information.
func checkHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("must be an absolute http or https URL with a host")
	}
	if u.User != nil {
		return nil, errors.New("must not contain user information (user:password@)")
	}
	return u, nil
}

// BaseURLFor returns the access API base URL of a Datacore environment:
// "production", "nonprod" or "sandpit".
func BaseURLFor(env string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(env)) {
	case "production":
		return ProductionBaseURL, nil
	case "nonprod":
		return NonprodBaseURL, nil
	case "sandpit":
		return SandpitBaseURL, nil
	}
	return "", fmt.Errorf("access: unknown environment %q: want production, nonprod or sandpit", env)
}

// credentialFields are the credentials as sent in request bodies; only one
// kind is ever set.
type credentialFields struct {
	CredentialID      string `json:"credentialId,omitempty"`
	CredentialSecret  string `json:"credentialSecret,omitempty"`
	UserIdentityToken string `json:"userIdentityToken,omitempty"`
	ApplicationID     string `json:"applicationId,omitempty"`
}

// fields returns the credentials of the kind in use.
func (c *Client) fields() credentialFields {
	if c.creds.user() {
		return credentialFields{UserIdentityToken: c.creds.UserIdentityToken, ApplicationID: c.creds.ApplicationID}
	}
	return credentialFields{CredentialID: c.creds.CredentialID, CredentialSecret: c.creds.CredentialSecret}
}

// accessBody is the body of a fixture or venue access call.
type accessBody struct {
	FixtureID   string   `json:"fixtureId,omitempty"`
	VenueID     string   `json:"venueId,omitempty"`
	Sport       string   `json:"sport"`
	Scopes      []string `json:"scopes"`
	IncludePort bool     `json:"includePort"`
	credentialFields
}

// specificBody is the body of a specific-topics access call.
type specificBody struct {
	Topics      []string         `json:"topics"`
	Scopes      []string         `json:"scopes"`
	Credentials credentialFields `json:"credentials"`
}

// Access asks for a grant to req's fixture or venue stream with
// POST {base}/stream/{kind}/access. Errors are *Error.
func (c *Client) Access(ctx context.Context, req Request) (Grant, error) {
	body := accessBody{
		Sport:            req.Sport,
		Scopes:           nonNil(req.Scopes),
		IncludePort:      req.IncludePort,
		credentialFields: c.fields(),
	}
	switch req.Kind {
	case Fixture:
		body.FixtureID = req.ID
	case Venue:
		body.VenueID = req.ID
	default:
		return Grant{}, c.invalid(req.Kind, fmt.Sprintf("unknown kind %q (want fixture or venue)", req.Kind))
	}
	switch {
	case req.ID == "":
		return Grant{}, c.invalid(req.Kind, "empty "+string(req.Kind)+" id")
	case req.Sport == "":
		return Grant{}, c.invalid(req.Kind, "empty sport")
	case len(req.Scopes) == 0:
		return Grant{}, c.invalid(req.Kind, "no scopes")
	}
	return c.call(ctx, "/stream/"+string(req.Kind)+"/access", body, req.Kind)
}

// Specific asks for a grant to the given topics with
// POST {base}/stream/fixture/specific. Errors are *Error.
func (c *Client) Specific(ctx context.Context, topics, scopes []string) (Grant, error) {
	if len(topics) == 0 {
		return Grant{}, c.invalid("", "no topics")
	}
	body := specificBody{Topics: topics, Scopes: nonNil(scopes), Credentials: c.fields()}
	return c.call(ctx, "/stream/fixture/specific", body, "")
}

// invalid returns the error for a request rejected before it is sent.
func (c *Client) invalid(kind Kind, msg string) *Error {
	return &Error{Message: msg, Err: ErrBadRequest, hint: hintFor(ErrBadRequest, kind, c.unauth)}
}

// call POSTs body to path and turns the answer into a Grant or an *Error.
func (c *Client) call(ctx context.Context, path string, body any, kind Kind) (Grant, error) {
	data, received, serverDate, err := c.post(ctx, path, body, kind)
	if err != nil {
		return Grant{}, err
	}
	g, msg := parseGrant(data, received, serverDate)
	if msg != "" {
		return Grant{}, c.newError(http.StatusOK, ErrMalformed, kind, msg, nil)
	}
	return g, nil
}

// post POSTs body to path, paced and with the bearer token when one is
// configured, and returns a 200 answer's body, the time it arrived and its
// Date header (zero when absent), or an *Error.
func (c *Client) post(ctx context.Context, path string, body any, kind Kind) ([]byte, time.Time, time.Time, error) {
	var zero time.Time
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, zero, zero, c.invalid(kind, "cannot encode request")
	}
	if err := c.wait(ctx); err != nil {
		return nil, zero, zero, c.newError(0, ErrTransport, kind, "waiting for a turn to call: "+err.Error(), err)
	}
	// The body first: an echo of it is removed whole.
	r := c.redactor(string(payload))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(payload))
	if err != nil {
		return nil, zero, zero, c.newError(0, ErrTransport, kind, "cannot build request: "+r.redact(err.Error()), err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if c.token != nil {
		tok, err := c.token(ctx)
		if err != nil {
			var ae *Error
			if errors.As(err, &ae) {
				return nil, zero, zero, err
			}
			return nil, zero, zero, c.newError(0, ErrTransport, kind, "bearer token: "+r.redact(err.Error()), err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
			r.secrets = r.secrets.Merge(redact.NewSecrets(tok))
		}
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, zero, zero, c.newError(0, ErrTransport, kind, r.redact(err.Error()), err)
	}
	defer resp.Body.Close()
	received := time.Now()
	data, readErr := readLimited(resp.Body)

	if resp.StatusCode != http.StatusOK {
		e := c.newError(resp.StatusCode, statusSentinel(resp.StatusCode), kind, clean(r.redact(serverMessage(resp, data))), nil)
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), received); ok && !e.Permanent() {
			e.RetryAfter = d
		}
		return nil, zero, zero, e
	}
	if readErr != nil {
		if errors.Is(readErr, errTooLarge) {
			return nil, zero, zero, c.newError(resp.StatusCode, ErrMalformed, kind, "response larger than 1 MiB", nil)
		}
		return nil, zero, zero, c.newError(resp.StatusCode, ErrTransport, kind, "reading response: "+r.redact(readErr.Error()), readErr)
	}
	serverDate, _ := http.ParseTime(resp.Header.Get("Date"))
	return data, received, serverDate, nil
}

// wait blocks until the pace allows one more call, or returns ctx's error
// (giving the turn back) once ctx is done first.
func (c *Client) wait(ctx context.Context) error {
	if c.pace == nil {
		return nil
	}
	r := c.pace.Reserve()
	d := r.Delay()
	if d == 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

// newError builds an *Error with the hint for its kind.
func (c *Client) newError(status int, sentinel error, kind Kind, msg string, cause error) *Error {
	return &Error{Status: status, Message: msg, Err: sentinel, hint: hintFor(sentinel, kind, c.unauth), cause: cause}
}

// redactor returns a redactor for the request body and the client's secrets.
func (c *Client) redactor(payload string) redactor {
	return newRedactor(payload, c.creds.CredentialSecret, c.creds.UserIdentityToken)
}

// readLimited reads at most maxBodySize bytes of body.
func readLimited(body io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(body, maxBodySize+1))
	if err != nil {
		return data, err
	}
	if len(data) > maxBodySize {
		return data[:maxBodySize], errTooLarge
	}
	return data, nil
}

// grantResponse is a successful access call's body.
type grantResponse struct {
	Data *struct {
		URL      string  `json:"url"`
		ClientID string  `json:"clientId"`
		Topics   []Topic `json:"topics"`
	} `json:"data"`
}

// parseGrant decodes and validates a 200 body received at received (local
// clock) with the Date header serverDate (zero when absent). On failure it
// returns a message that never contains the URL.
func parseGrant(data []byte, received, serverDate time.Time) (Grant, string) {
	var resp grantResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Grant{}, "unexpected type for " + te.Field
		}
		return Grant{}, "response is not valid JSON"
	}
	d := resp.Data
	if d == nil {
		return Grant{}, "response has no data"
	}
	u, err := url.Parse(d.URL)
	switch {
	case d.URL == "":
		return Grant{}, "response has no url"
	case err != nil || (u.Scheme != "ws" && u.Scheme != "wss"):
		return Grant{}, "url is not a ws:// or wss:// URL"
	case u.Host == "":
		return Grant{}, "url has no host"
	case d.ClientID == "":
		return Grant{}, "response has no clientId"
	case len(d.Topics) == 0:
		return Grant{}, "response has no topics"
	}
	for i, t := range d.Topics {
		if t.Topic == "" {
			return Grant{}, fmt.Sprintf("topic %d has no name", i)
		}
	}
	g := Grant{URL: d.URL, ClientID: d.ClientID, Topics: d.Topics, IssuedAt: received, ServerDate: serverDate}
	issued, expires, ok := ParseExpiry(d.URL)
	g.Skew = measureSkew(serverDate, issued, received)
	if !issued.IsZero() {
		g.IssuedAt = issued.Add(-g.Skew)
	}
	if ok {
		g.ExpiresAt = expires.Add(-g.Skew)
	}
	return g, ""
}

// skewResolution is the least clock skew that is acted on: the Date header
// and X-Amz-Date count whole seconds.
const skewResolution = time.Second

// measureSkew returns how far the service's clock is ahead of the local one,
// or zero when that is unknown or within skewResolution. The Date header
// (truncated to the second when the response was sent) is the measure; the
// middle of its second is compared with the local time of receipt. Without
// it, an X-Amz-Date in the future shows the service ahead (a URL is never
// signed after it is sent; it may have been signed well before).
func measureSkew(serverDate, issued, received time.Time) time.Duration {
	var skew time.Duration
	switch {
	case !serverDate.IsZero():
		skew = serverDate.Add(skewResolution / 2).Sub(received)
	case !issued.IsZero():
		skew = max(0, issued.Add(skewResolution/2).Sub(received))
	}
	if skew >= -skewResolution && skew <= skewResolution {
		return 0
	}
	return skew.Round(time.Millisecond)
}

// errorResponse holds the places an error body may carry its message.
type errorResponse struct {
	Error   json.RawMessage `json:"error"`
	Message string          `json:"message"` // json matches "Message" too
}

// serverMessage extracts a failed call's message: error.message (or error
// when it is a string), else message or Message, else the status text.
func serverMessage(resp *http.Response, data []byte) string {
	var er errorResponse
	if json.Unmarshal(data, &er) == nil {
		var nested struct {
			Message string `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(er.Error, &nested) == nil && nested.Message != "":
			return nested.Message
		case json.Unmarshal(er.Error, &s) == nil && s != "":
			return s
		case er.Message != "":
			return er.Message
		}
	}
	if t := http.StatusText(resp.StatusCode); t != "" {
		return t
	}
	return "status " + resp.Status
}

// maxMessage is the longest server message kept, in runes.
const maxMessage = 300

// clean makes a server message one short printable line. Redact before
// cleaning, so that truncation cannot leave part of a secret behind.
func clean(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxMessage {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f {
			r = ' '
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

// nonNil returns s, or an empty slice so that JSON carries [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
