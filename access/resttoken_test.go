package access

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// restTokenCall is what a fake REST token endpoint saw.
type restTokenCall struct {
	path, auth string
	body       map[string]any
}

// newRESTTokenServer answers every call with status, headers and body, and
// records the calls.
func newRESTTokenServer(t *testing.T, status int, header map[string]string, body string) (*httptest.Server, *[]restTokenCall) {
	t.Helper()
	var calls []restTokenCall
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		c := restTokenCall{path: r.URL.Path, auth: r.Header.Get("Authorization")}
		_ = json.Unmarshal(raw, &c.body)
		calls = append(calls, c)
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestRESTTokenRequestAndAnswer(t *testing.T) {
	tests := []struct {
		name    string
		creds   Credentials
		bearer  string
		body    string
		want    map[string]any
		wantTyp string
		wantTTL time.Duration
	}{
		{
			name:  "application credentials, expiresIn",
			creds: Credentials{CredentialID: "cid", CredentialSecret: "sec"},
			body:  `{"data":{"token":"rest-tok","tokenType":"bearer","expiresIn":3600}}`,
			want: map[string]any{"sport": "basketball", "organization": map[string]any{"id": []any{"o1", "o2"}},
				"credentialId": "cid", "credentialSecret": "sec"},
			wantTyp: "bearer", wantTTL: time.Hour,
		},
		{
			name:   "user credentials, expires_in, bearer",
			creds:  Credentials{UserIdentityToken: "uit", ApplicationID: "app"},
			bearer: "oauth-tok",
			body:   `{"data":{"token":"rest-tok","tokenType":"bearer","expires_in":60}}`,
			want: map[string]any{"sport": "basketball", "organization": map[string]any{"id": []any{"o1", "o2"}},
				"userIdentityToken": "uit", "applicationId": "app"},
			wantTyp: "bearer", wantTTL: time.Minute,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, calls := newRESTTokenServer(t, http.StatusOK, nil, tt.body)
			opts := Options{BaseURL: srv.URL + "/v1", Credentials: tt.creds}
			if tt.bearer != "" {
				opts.Token = func(context.Context) (string, error) { return tt.bearer, nil }
			}
			c, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			before := time.Now()
			tok, err := c.RESTToken(t.Context(), "basketball", []string{"o1", "o2"})
			if err != nil {
				t.Fatalf("RESTToken: %v", err)
			}
			if tok.Value != "rest-tok" || tok.Type != tt.wantTyp {
				t.Errorf("token = %q %q, want rest-tok %q", tok.Value, tok.Type, tt.wantTyp)
			}
			if ttl := tok.ExpiresAt.Sub(before); ttl < tt.wantTTL || ttl > tt.wantTTL+5*time.Second {
				t.Errorf("expires in %v, want about %v", ttl, tt.wantTTL)
			}
			if len(*calls) != 1 {
				t.Fatalf("%d calls, want 1", len(*calls))
			}
			got := (*calls)[0]
			if got.path != "/v1/oauth2/rest/token" {
				t.Errorf("path = %q", got.path)
			}
			wantAuth := ""
			if tt.bearer != "" {
				wantAuth = "Bearer " + tt.bearer
			}
			if got.auth != wantAuth {
				t.Errorf("Authorization = %q, want %q", got.auth, wantAuth)
			}
			gb, _ := json.Marshal(got.body)
			wb, _ := json.Marshal(tt.want)
			if string(gb) != string(wb) {
				t.Errorf("body = %s, want %s", gb, wb)
			}
		})
	}
}

func TestRESTTokenErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		sentinel   error
		permanent  bool
		retryAfter time.Duration
		hint       string
	}{
		{name: "401", status: 401, body: `{"message":"bad credentials sec"}`, sentinel: ErrUnauthorized, permanent: true, hint: "check the credential id and secret"},
		{name: "403", status: 403, body: `{"message":"no"}`, sentinel: ErrForbidden, permanent: true, hint: "organization ids"},
		{name: "429", status: 429, header: map[string]string{"Retry-After": "7"}, sentinel: ErrRateLimited, retryAfter: 7 * time.Second},
		{name: "503", status: 503, sentinel: ErrUnavailable},
		{name: "no token", status: 200, body: `{"data":{}}`, sentinel: ErrMalformed},
		{name: "not json", status: 200, body: `<html>`, sentinel: ErrMalformed},
		{name: "bad expiry", status: 200, body: `{"data":{"token":"x","expiresIn":"soon"}}`, sentinel: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newRESTTokenServer(t, tt.status, tt.header, tt.body)
			c, err := New(Options{BaseURL: srv.URL, Credentials: Credentials{CredentialID: "cid", CredentialSecret: "sec"}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.RESTToken(t.Context(), "basketball", []string{"o1"})
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("err = %v, want %v", err, tt.sentinel)
			}
			if got := IsPermanent(err); got != tt.permanent {
				t.Errorf("permanent = %v, want %v", got, tt.permanent)
			}
			if d, _ := RetryAfter(err); d != tt.retryAfter {
				t.Errorf("retry after = %v, want %v", d, tt.retryAfter)
			}
			if tt.hint != "" && !strings.Contains(err.Error(), tt.hint) {
				t.Errorf("err = %q, want a hint with %q", err, tt.hint)
			}
			if strings.Contains(err.Error(), "sec\"") || strings.Contains(err.Error(), "credentials sec") {
				t.Errorf("err leaks the secret: %q", err)
			}
		})
	}
}

func TestRESTURLFor(t *testing.T) {
	tests := []struct{ env, want string }{
		{"production", ProductionRESTURL},
		{"nonprod", NonprodRESTURL},
		{"Sandpit", SandpitRESTURL},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			got, err := RESTURLFor(tt.env)
			if err != nil || got != tt.want {
				t.Errorf("RESTURLFor(%q) = %q, %v; want %q", tt.env, got, err, tt.want)
			}
		})
	}
	if _, err := RESTURLFor("moon"); err == nil {
		t.Error("RESTURLFor(moon): no error")
	}
}
