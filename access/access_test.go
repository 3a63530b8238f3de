package access

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testCredID        = "cred-id-1"
	testSecret        = `s3cr3t/Sec"ret+V&lue==`
	testIdentityToken = "user-identity-token-XYZ"
	testAppID         = "app-id-1"
	testSignature     = "deadbeefcafe"
	testSessionToken  = "SESSIONTOKEN"
)

func appCreds() Credentials {
	return Credentials{CredentialID: testCredID, CredentialSecret: testSecret}
}

func userCreds() Credentials {
	return Credentials{UserIdentityToken: testIdentityToken, ApplicationID: testAppID}
}

// recorded is one request seen by a fake access API.
type recorded struct {
	Method string
	Path   string
	Header http.Header
	Body   map[string]any
}

// fakeAPI is an httptest access API that records requests and answers with
// its handler (a 200 grant from testdata by default).
type fakeAPI struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []recorded
	respond http.HandlerFunc
}

func newFakeAPI(t *testing.T, respond http.HandlerFunc) *fakeAPI {
	t.Helper()
	if respond == nil {
		grant := grantJSON(t)
		respond = func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(grant)
		}
	}
	f := &fakeAPI{respond: respond}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		rec := recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()}
		_ = json.Unmarshal(data, &rec.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, rec)
		f.mu.Unlock()
		f.respond(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fakeAPI) apiURL() string { return f.URL + "/v1" }

func grantJSON(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/grant.json")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func newTestClient(t *testing.T, base string, creds Credentials, token func(context.Context) (string, error)) *Client {
	t.Helper()
	c, err := New(Options{BaseURL: base, Credentials: creds, Token: token})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func fixtureReq() Request {
	return Request{Kind: Fixture, ID: "F1", Sport: "basketball", Scopes: []string{"read:stream_events", "read:stream_status"}}
}

// jsonWriter answers with status, headers and body.
func jsonWriter(status int, body string, header map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func TestBaseURLFor(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		want    string
		wantErr bool
	}{
		{name: "production", env: "production", want: "https://token.connect.sportradar.com/v1"},
		{name: "nonprod", env: "nonprod", want: "https://token.stg.connect-nonprod.sportradar.dev/v1"},
		{name: "sandpit", env: "sandpit", want: "https://token.dev.connect-nonprod.sportradar.dev/v1"},
		{name: "case and space", env: " Production ", want: "https://token.connect.sportradar.com/v1"},
		{name: "unknown", env: "staging", wantErr: true},
		{name: "empty", env: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BaseURLFor(tt.env)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("BaseURLFor(%q) = %q, want error", tt.env, got)
				}
				for _, s := range []string{"production", "nonprod", "sandpit", "unknown environment " + strconv.Quote(tt.env)} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not name %q", err, s)
					}
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("BaseURLFor(%q) = %q, %v; want %q", tt.env, got, err, tt.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "app credentials", opts: Options{BaseURL: "https://h/v1", Credentials: appCreds()}},
		{name: "user credentials", opts: Options{BaseURL: "http://127.0.0.1:1/v1/", Credentials: userCreds()}},
		{name: "empty base", opts: Options{Credentials: appCreds()}, wantErr: "access: base URL must be an absolute http or https URL with a host"},
		{name: "ftp base", opts: Options{BaseURL: "ftp://h/v1", Credentials: appCreds()}, wantErr: "access: base URL must be an absolute http or https URL with a host"},
		{name: "ftp base with password", opts: Options{BaseURL: "ftp://u:s3cr3t@h/v1", Credentials: appCreds()}, wantErr: "access: base URL must be an absolute http or https URL with a host"},
		{name: "no host", opts: Options{BaseURL: "https:///v1", Credentials: appCreds()}, wantErr: "access: base URL must be an absolute http or https URL with a host"},
		{name: "user info", opts: Options{BaseURL: "https://u:" + testSecret + "@h/v1", Credentials: appCreds()}, wantErr: "access: base URL must "},
		{name: "query", opts: Options{BaseURL: "https://h/v1?a=b", Credentials: appCreds()}, wantErr: "access: base URL must not have a query or fragment"},
		{name: "no credentials", opts: Options{BaseURL: "https://h/v1"}, wantErr: "access: credentials: no credentials"},
		{name: "missing secret", opts: Options{BaseURL: "https://h/v1", Credentials: Credentials{CredentialID: "x"}}, wantErr: "access: credentials: credential secret is empty"},
		{name: "missing id", opts: Options{BaseURL: "https://h/v1", Credentials: Credentials{CredentialSecret: testSecret}}, wantErr: "access: credentials: credential id is empty"},
		{name: "missing application id", opts: Options{BaseURL: "https://h/v1", Credentials: Credentials{UserIdentityToken: testIdentityToken}}, wantErr: "access: credentials: application id is empty"},
		{name: "missing identity token", opts: Options{BaseURL: "https://h/v1", Credentials: Credentials{ApplicationID: "a"}}, wantErr: "access: credentials: user identity token is empty"},
		{name: "both kinds", opts: Options{BaseURL: "https://h/v1", Credentials: Credentials{
			CredentialID: testCredID, CredentialSecret: testSecret, UserIdentityToken: testIdentityToken, ApplicationID: testAppID,
		}}, wantErr: "are both set: set one kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want it to mention %q", err, tt.wantErr)
			}
			assertNoSecrets(t, err)
		})
	}
}

func TestAccessRequest(t *testing.T) {
	tests := []struct {
		name     string
		creds    Credentials
		req      Request
		wantPath string
		wantBody map[string]any
	}{
		{
			name:     "fixture with application credentials",
			creds:    appCreds(),
			req:      fixtureReq(),
			wantPath: "/v1/stream/fixture/access",
			wantBody: map[string]any{
				"fixtureId": "F1", "sport": "basketball",
				"scopes":      []any{"read:stream_events", "read:stream_status"},
				"includePort": false, "credentialId": testCredID, "credentialSecret": testSecret,
			},
		},
		{
			name:     "fixture with user credentials and includePort",
			creds:    userCreds(),
			req:      Request{Kind: Fixture, ID: "F 2", Sport: "handball", Scopes: []string{"read:stream_events"}, IncludePort: true},
			wantPath: "/v1/stream/fixture/access",
			wantBody: map[string]any{
				"fixtureId": "F 2", "sport": "handball", "scopes": []any{"read:stream_events"},
				"includePort": true, "userIdentityToken": testIdentityToken, "applicationId": testAppID,
			},
		},
		{
			name:     "venue with application credentials",
			creds:    appCreds(),
			req:      Request{Kind: Venue, ID: "V1", Sport: "basketball", Scopes: []string{"read:stream_scoreboard"}},
			wantPath: "/v1/stream/venue/access",
			wantBody: map[string]any{
				"venueId": "V1", "sport": "basketball", "scopes": []any{"read:stream_scoreboard"},
				"includePort": false, "credentialId": testCredID, "credentialSecret": testSecret,
			},
		},
		{
			name:     "venue with user credentials",
			creds:    userCreds(),
			req:      Request{Kind: Venue, ID: "V1", Sport: "basketball", Scopes: []string{"read:stream_scoreboard"}, IncludePort: true},
			wantPath: "/v1/stream/venue/access",
			wantBody: map[string]any{
				"venueId": "V1", "sport": "basketball", "scopes": []any{"read:stream_scoreboard"},
				"includePort": true, "userIdentityToken": testIdentityToken, "applicationId": testAppID,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, nil)
			c := newTestClient(t, api.apiURL()+"/", tt.creds, nil)
			if _, err := c.Access(t.Context(), tt.req); err != nil {
				t.Fatalf("Access: %v", err)
			}
			reqs := api.requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			assertRequest(t, reqs[0], tt.wantPath, tt.wantBody)
			if got := reqs[0].Header.Get("Authorization"); got != "" {
				t.Errorf("Authorization = %q without a token source", got)
			}
		})
	}
}

func assertRequest(t *testing.T, r recorded, path string, body map[string]any) {
	t.Helper()
	if r.Method != http.MethodPost || r.Path != path {
		t.Errorf("request = %s %s, want POST %s", r.Method, r.Path, path)
	}
	for h, want := range map[string]string{"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "datacore-bridge"} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if !reflect.DeepEqual(r.Body, body) {
		t.Errorf("body = %#v\nwant %#v", r.Body, body)
	}
}

func TestSpecificRequest(t *testing.T) {
	tests := []struct {
		name      string
		creds     Credentials
		scopes    []string
		wantCreds map[string]any
		wantScope []any
	}{
		{
			name: "application credentials", creds: appCreds(), scopes: []string{"read:stream_events"},
			wantCreds: map[string]any{"credentialId": testCredID, "credentialSecret": testSecret},
			wantScope: []any{"read:stream_events"},
		},
		{
			name: "user credentials, no scopes", creds: userCreds(),
			wantCreds: map[string]any{"userIdentityToken": testIdentityToken, "applicationId": testAppID},
			wantScope: []any{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, nil)
			c := newTestClient(t, api.apiURL(), tt.creds, nil)
			g, err := c.Specific(t.Context(), []string{"s/b/b1te1/F1/r/e"}, tt.scopes)
			if err != nil {
				t.Fatalf("Specific: %v", err)
			}
			if g.ClientID != "stream-0123456789" {
				t.Errorf("ClientID = %q", g.ClientID)
			}
			reqs := api.requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			assertRequest(t, reqs[0], "/v1/stream/fixture/specific", map[string]any{
				"topics": []any{"s/b/b1te1/F1/r/e"}, "scopes": tt.wantScope, "credentials": tt.wantCreds,
			})
		})
	}
}

func TestAccessGrant(t *testing.T) {
	api := newFakeAPI(t, nil)
	c := newTestClient(t, api.apiURL(), appCreds(), nil)
	g, err := c.Access(t.Context(), fixtureReq())
	if err != nil {
		t.Fatalf("Access: %v", err)
	}
	if !strings.HasPrefix(g.URL, "wss://abc123-ats.iot.eu-west-1.amazonaws.com/mqtt?") {
		t.Errorf("URL = %q", g.URL)
	}
	if g.ClientID != "stream-0123456789" {
		t.Errorf("ClientID = %q", g.ClientID)
	}
	if g.Host() != "abc123-ats.iot.eu-west-1.amazonaws.com" {
		t.Errorf("Host = %q", g.Host())
	}
	if len(g.Topics) != 3 {
		t.Fatalf("Topics = %v", g.Topics)
	}
	wantRead := []Topic{
		{Topic: "s/b/b1te1/F1/r/e", Scope: "read:stream_events", Permission: "read"},
		{Topic: "s/b/b1te1/F1/r/s", Scope: "read:stream_status", Permission: "read"},
	}
	if got := g.ReadTopics(); !reflect.DeepEqual(got, wantRead) {
		t.Errorf("ReadTopics = %v, want %v", got, wantRead)
	}
	issued := time.Date(2024, 3, 15, 12, 0, 0, 0, time.UTC)
	if !g.IssuedAt.Equal(issued) || !g.ExpiresAt.Equal(issued.Add(time.Hour)) {
		t.Errorf("IssuedAt, ExpiresAt = %v, %v; want %v, %v", g.IssuedAt, g.ExpiresAt, issued, issued.Add(time.Hour))
	}
}

func TestAccessGrantWithoutExpiry(t *testing.T) {
	api := newFakeAPI(t, jsonWriter(http.StatusOK,
		`{"data":{"url":"ws://127.0.0.1:4567/mqtt?token=x","clientId":"c1","topics":[{"topic":"t","scope":"read:stream_events","permission":"read"}]},"meta":{}}`, nil))
	c := newTestClient(t, api.apiURL(), appCreds(), nil)
	before := time.Now()
	g, err := c.Access(t.Context(), fixtureReq())
	after := time.Now()
	if err != nil {
		t.Fatalf("Access: %v", err)
	}
	if g.IssuedAt.Before(before) || g.IssuedAt.After(after) {
		t.Errorf("IssuedAt = %v, want the time of receipt in [%v, %v]", g.IssuedAt, before, after)
	}
	if !g.ExpiresAt.IsZero() {
		t.Errorf("ExpiresAt = %v, want zero", g.ExpiresAt)
	}
	if g.Host() != "127.0.0.1:4567" {
		t.Errorf("Host = %q, want host:port", g.Host())
	}
}

func TestGrantHost(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want string
	}{
		{name: "host", url: "wss://h.example/mqtt?X-Amz-Signature=x", want: "h.example"},
		{name: "host and port", url: "wss://h.example:443/mqtt", want: "h.example:443"},
		{name: "invalid", url: "wss://h/%zz", want: ""},
		{name: "empty", url: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Grant{URL: tt.url}).Host(); got != tt.want {
				t.Errorf("Host() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStatusMapping(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		header     map[string]string
		want       error
		permanent  bool
		outcome    string
		wantMsg    string
		retryAfter time.Duration
	}{
		{name: "400 error.message", status: 400, body: `{"error":{"message":"unknown sport"}}`, want: ErrBadRequest, permanent: true, outcome: "bad_request", wantMsg: "unknown sport"},
		{name: "401 message", status: 401, body: `{"message":"Invalid credentials"}`, want: ErrUnauthorized, permanent: true, outcome: "unauthorized", wantMsg: "Invalid credentials"},
		{name: "403 Message", status: 403, body: `{"Message":"User is not authorized"}`, want: ErrForbidden, permanent: true, outcome: "forbidden", wantMsg: "User is not authorized"},
		{name: "404 empty body", status: 404, want: ErrNotFound, permanent: true, outcome: "not_found", wantMsg: "Not Found"},
		{name: "422 not JSON", status: 422, body: "<html>oops</html>", want: ErrBadRequest, permanent: true, outcome: "bad_request", wantMsg: "Unprocessable Entity"},
		{name: "418 other 4xx", status: 418, body: `{"error":"teapot"}`, want: ErrBadRequest, permanent: true, outcome: "bad_request", wantMsg: "teapot"},
		{name: "408", status: 408, want: ErrUnavailable, outcome: "server_error", wantMsg: "Request Timeout"},
		{name: "429 seconds", status: 429, body: `{"message":"slow down"}`, header: map[string]string{"Retry-After": "3"}, want: ErrRateLimited, outcome: "rate_limited", wantMsg: "slow down", retryAfter: 3 * time.Second},
		{name: "429 no Retry-After", status: 429, want: ErrRateLimited, outcome: "rate_limited", wantMsg: "Too Many Requests"},
		{name: "500", status: 500, body: `{"error":{"message":"internal"}}`, want: ErrUnavailable, outcome: "server_error", wantMsg: "internal"},
		{name: "502", status: 502, want: ErrUnavailable, outcome: "server_error", wantMsg: "Bad Gateway"},
		{name: "503 Retry-After", status: 503, header: map[string]string{"Retry-After": "120"}, want: ErrUnavailable, outcome: "server_error", wantMsg: "Service Unavailable", retryAfter: 2 * time.Minute},
		{name: "504", status: 504, want: ErrUnavailable, outcome: "server_error", wantMsg: "Gateway Timeout"},
		{name: "201 not 200", status: 201, body: string(grantJSON(t)), want: ErrUnavailable, outcome: "server_error", wantMsg: "Created"},
		{name: "message control characters", status: 400, body: `{"message":"line1\nline2"}`, want: ErrBadRequest, permanent: true, outcome: "bad_request", wantMsg: "line1 line2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, jsonWriter(tt.status, tt.body, tt.header))
			c := newTestClient(t, api.apiURL(), appCreds(), nil)
			_, err := c.Access(t.Context(), fixtureReq())
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.want)
			}
			if ae.Status != tt.status {
				t.Errorf("Status = %d, want %d", ae.Status, tt.status)
			}
			if ae.Message != tt.wantMsg {
				t.Errorf("Message = %q, want %q", ae.Message, tt.wantMsg)
			}
			if ae.Permanent() != tt.permanent || IsPermanent(err) != tt.permanent {
				t.Errorf("Permanent = %v, IsPermanent = %v, want %v", ae.Permanent(), IsPermanent(err), tt.permanent)
			}
			if got := Outcome(err); got != tt.outcome {
				t.Errorf("Outcome = %q, want %q", got, tt.outcome)
			}
			d, ok := RetryAfter(err)
			if d != tt.retryAfter || ok != (tt.retryAfter > 0) {
				t.Errorf("RetryAfter = %v, %v; want %v", d, ok, tt.retryAfter)
			}
		})
	}
}

func TestErrorSaysWhatToDo(t *testing.T) {
	tests := []struct {
		name  string
		creds Credentials
		token func(context.Context) (string, error)
		req   Request
		resp  http.HandlerFunc
		want  string
	}{
		{
			name: "401 application credentials", creds: appCreds(), req: fixtureReq(),
			resp: jsonWriter(401, `{"message":"Invalid credentials"}`, nil),
			want: "access: credentials rejected (401): Invalid credentials: check the credential id and secret",
		},
		{
			name: "401 user credentials with oauth", creds: userCreds(), req: fixtureReq(),
			token: func(context.Context) (string, error) { return "bearer-1", nil },
			resp:  jsonWriter(401, "", nil),
			want:  "access: credentials rejected (401): Unauthorized: check the user identity token and application id, and the OAuth2 client settings",
		},
		{
			name: "403 fixture", creds: appCreds(), req: fixtureReq(),
			resp: jsonWriter(403, `{"message":"scope not granted"}`, nil),
			want: "access: forbidden (403): scope not granted: scope not granted or not entitled to this fixture: remove the scope from the fixture scopes asked for, or ask for it to be granted",
		},
		{
			name: "403 venue", creds: appCreds(), req: Request{Kind: Venue, ID: "V1", Sport: "basketball", Scopes: []string{"read:stream_scoreboard"}},
			resp: jsonWriter(403, "", nil),
			want: "access: forbidden (403): Forbidden: scope not granted or not entitled to this venue: remove the scope from the venue scopes asked for, or ask for it to be granted",
		},
		{
			name: "404 fixture", creds: appCreds(), req: fixtureReq(),
			resp: jsonWriter(404, `{"message":"fixture not found"}`, nil),
			want: "access: not found (404): fixture not found: check the fixture id and the access API URL (its environment)",
		},
		{
			name: "429", creds: appCreds(), req: fixtureReq(),
			resp: jsonWriter(429, "", map[string]string{"Retry-After": "5"}),
			want: "access: rate limited (429): Too Many Requests: retry after 5s: retryable: slow down",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, tt.resp)
			c := newTestClient(t, api.apiURL(), tt.creds, tt.token)
			_, err := c.Access(t.Context(), tt.req)
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v\nwant  %s", err, tt.want)
			}
		})
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	other := newFakeAPI(t, nil)
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	})
	c := newTestClient(t, api.apiURL(), appCreds(), nil)
	_, err := c.Access(t.Context(), fixtureReq())
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("redirect target got %d requests carrying the credentials, want 0", n)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2024, 3, 15, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		value  string
		want   time.Duration
		wantOK bool
	}{
		{name: "seconds", value: "7", want: 7 * time.Second, wantOK: true},
		{name: "zero", value: "0", want: 0, wantOK: true},
		{name: "spaces", value: " 12 ", want: 12 * time.Second, wantOK: true},
		{name: "http date", value: now.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second, wantOK: true},
		{name: "rfc850 date", value: now.Add(time.Minute).Format(time.RFC850), want: time.Minute, wantOK: true},
		{name: "date in the past", value: now.Add(-time.Minute).Format(http.TimeFormat), want: 0, wantOK: true},
		{name: "huge", value: "99999999999999", want: maxRetryAfter, wantOK: true},
		{name: "negative", value: "-5"},
		{name: "garbage", value: "soon"},
		{name: "empty", value: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.value, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.value, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestRetryAfterFromDateHeader(t *testing.T) {
	at := time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)
	api := newFakeAPI(t, jsonWriter(429, "", map[string]string{"Retry-After": at}))
	c := newTestClient(t, api.apiURL(), appCreds(), nil)
	_, err := c.Access(t.Context(), fixtureReq())
	d, ok := RetryAfter(err)
	// The date has one-second resolution.
	if !ok || d < 58*time.Second || d > time.Minute {
		t.Errorf("RetryAfter = %v, %v; want about 1m", d, ok)
	}
}

func TestMalformedResponses(t *testing.T) {
	topics := `"topics":[{"topic":"t","scope":"read:stream_events","permission":"read"}]`
	signed := "wss://h.example/mqtt?X-Amz-Date=20240315T120000Z&X-Amz-Expires=60&X-Amz-Signature=" + testSignature
	tests := []struct {
		name string
		body string
		want string
	}{
		{name: "not JSON", body: "<html>" + signed + "</html>", want: "not valid JSON"},
		{name: "empty body", body: "", want: "not valid JSON"},
		{name: "truncated", body: `{"data":{"url":"` + signed, want: "not valid JSON"},
		{name: "no data", body: `{"meta":{}}`, want: "no data"},
		{name: "null data", body: `{"data":null}`, want: "no data"},
		{name: "no url", body: `{"data":{"clientId":"c",` + topics + `}}`, want: "no url"},
		{name: "https url", body: `{"data":{"url":"https://h.example/mqtt?X-Amz-Signature=` + testSignature + `","clientId":"c",` + topics + `}}`, want: "not a ws://"},
		{name: "unparsable url", body: `{"data":{"url":"wss://h/%zz?X-Amz-Signature=` + testSignature + `","clientId":"c",` + topics + `}}`, want: "not a ws://"},
		{name: "url without host", body: `{"data":{"url":"wss:///mqtt?X-Amz-Signature=` + testSignature + `","clientId":"c",` + topics + `}}`, want: "no host"},
		{name: "no clientId", body: `{"data":{"url":"` + signed + `",` + topics + `}}`, want: "no clientId"},
		{name: "no topics", body: `{"data":{"url":"` + signed + `","clientId":"c","topics":[]}}`, want: "no topics"},
		{name: "topic without name", body: `{"data":{"url":"` + signed + `","clientId":"c","topics":[{"scope":"read:stream_events","permission":"read"}]}}`, want: "no name"},
		{name: "url of wrong type", body: `{"data":{"url":42,"clientId":"c",` + topics + `}}`, want: "unexpected type for data.url"},
		{name: "larger than 1 MiB", body: `{"data":{"url":"` + signed + `","clientId":"c",` + topics + `},"pad":"` + strings.Repeat("x", maxBodySize) + `"}`, want: "larger than 1 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, jsonWriter(http.StatusOK, tt.body, nil))
			c := newTestClient(t, api.apiURL(), appCreds(), nil)
			_, err := c.Access(t.Context(), fixtureReq())
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to contain %q", err, tt.want)
			}
			if IsPermanent(err) || Outcome(err) != "malformed" {
				t.Errorf("IsPermanent = %v, Outcome = %q; want retryable, malformed", IsPermanent(err), Outcome(err))
			}
			assertNoSecrets(t, err)
			if strings.Contains(err.Error(), "h.example") {
				t.Errorf("error %q contains the signed URL", err)
			}
		})
	}
}

func TestInvalidRequests(t *testing.T) {
	tests := []struct {
		name string
		call func(*Client) error
		want string
	}{
		{name: "unknown kind", call: func(c *Client) error {
			r := fixtureReq()
			r.Kind = "team"
			_, err := c.Access(t.Context(), r)
			return err
		}, want: "unknown kind"},
		{name: "empty id", call: func(c *Client) error {
			r := fixtureReq()
			r.ID = ""
			_, err := c.Access(t.Context(), r)
			return err
		}, want: "empty fixture id"},
		{name: "empty sport", call: func(c *Client) error {
			r := fixtureReq()
			r.Sport = ""
			_, err := c.Access(t.Context(), r)
			return err
		}, want: "empty sport"},
		{name: "no scopes", call: func(c *Client) error {
			r := fixtureReq()
			r.Scopes = nil
			_, err := c.Access(t.Context(), r)
			return err
		}, want: "no scopes"},
		{name: "specific without topics", call: func(c *Client) error {
			_, err := c.Specific(t.Context(), nil, []string{"read:stream_events"})
			return err
		}, want: "no topics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, nil)
			c := newTestClient(t, api.apiURL(), appCreds(), nil)
			err := tt.call(c)
			if !errors.Is(err, ErrBadRequest) || !IsPermanent(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want a permanent ErrBadRequest mentioning %q", err, tt.want)
			}
			if n := len(api.requests()); n != 0 {
				t.Errorf("%d requests sent, want 0", n)
			}
		})
	}
}

// blockingAPI answers only when the request is cancelled or the test ends.
func blockingAPI(t *testing.T) *fakeAPI {
	t.Helper()
	release := make(chan struct{})
	api := newFakeAPI(t, func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	return api
}

func TestTransportErrors(t *testing.T) {
	t.Run("context deadline", func(t *testing.T) {
		api := blockingAPI(t)
		c := newTestClient(t, api.apiURL(), appCreds(), nil)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := c.Access(ctx, fixtureReq())
		assertTransport(t, err)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want errors.Is context.DeadlineExceeded", err)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		api := newFakeAPI(t, nil)
		c := newTestClient(t, api.apiURL(), appCreds(), nil)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := c.Access(ctx, fixtureReq())
		assertTransport(t, err)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want errors.Is context.Canceled", err)
		}
	})
	t.Run("http client timeout", func(t *testing.T) {
		api := blockingAPI(t)
		c, err := New(Options{BaseURL: api.apiURL(), Credentials: appCreds(), HTTPClient: &http.Client{Timeout: 100 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Access(t.Context(), fixtureReq())
		assertTransport(t, err)
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		base := srv.URL + "/v1"
		srv.Close()
		c := newTestClient(t, base, appCreds(), nil)
		_, err := c.Access(t.Context(), fixtureReq())
		assertTransport(t, err)
	})
}

func assertTransport(t *testing.T, err error) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) || !errors.Is(err, ErrTransport) {
		t.Fatalf("err = %v (%T), want *Error wrapping ErrTransport", err, err)
	}
	if ae.Status != 0 || IsPermanent(err) || Outcome(err) != "transport" {
		t.Errorf("Status = %d, IsPermanent = %v, Outcome = %q; want 0, false, transport", ae.Status, IsPermanent(err), Outcome(err))
	}
	assertNoSecrets(t, err)
}

func TestBearerToken(t *testing.T) {
	t.Run("sent", func(t *testing.T) {
		api := newFakeAPI(t, nil)
		c := newTestClient(t, api.apiURL(), appCreds(), func(context.Context) (string, error) { return "tok-abc", nil })
		if _, err := c.Access(t.Context(), fixtureReq()); err != nil {
			t.Fatal(err)
		}
		if got := api.requests()[0].Header.Get("Authorization"); got != "Bearer tok-abc" {
			t.Errorf("Authorization = %q", got)
		}
	})
	t.Run("source error", func(t *testing.T) {
		api := newFakeAPI(t, nil)
		c := newTestClient(t, api.apiURL(), appCreds(), func(context.Context) (string, error) {
			return "", errors.New("token store leaked " + testSecret)
		})
		_, err := c.Access(t.Context(), fixtureReq())
		assertTransport(t, err)
		if n := len(api.requests()); n != 0 {
			t.Errorf("%d requests sent without a token, want 0", n)
		}
	})
	t.Run("source *Error returned as is", func(t *testing.T) {
		api := newFakeAPI(t, nil)
		want := &Error{Status: 401, Err: ErrUnauthorized, Message: "oauth2 token: invalid_client"}
		c := newTestClient(t, api.apiURL(), appCreds(), func(context.Context) (string, error) { return "", want })
		_, err := c.Access(t.Context(), fixtureReq())
		if err != want {
			t.Errorf("err = %v, want %v", err, want)
		}
	})
}

func TestConcurrentAccess(t *testing.T) {
	api := newFakeAPI(t, nil)
	c := newTestClient(t, api.apiURL(), appCreds(), nil)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 8 {
		wg.Go(func() {
			if _, err := c.Access(t.Context(), fixtureReq()); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 || len(api.requests()) != 8 {
		t.Errorf("failed = %d, requests = %d; want 0, 8", failed.Load(), len(api.requests()))
	}
}
