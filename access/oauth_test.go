package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	oauthClientID     = "oauth-client"
	oauthClientSecret = "client-secret-123"
	oauthAudience     = "https://api.example/"
)

// tokenServer is an OAuth2 token endpoint that counts the tokens it issues.
type tokenServer struct {
	*httptest.Server
	calls atomic.Int32
}

// newTokenServer issues "tok-N" for the Nth call, valid expiresIn(N) seconds.
func newTokenServer(t *testing.T, expiresIn func(n int32) int) *tokenServer {
	t.Helper()
	ts := &tokenServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if id != oauthClientID || secret != oauthClientSecret ||
			r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("audience") != oauthAudience {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = fmt.Fprintf(w, `{"error":"invalid_client","error_description":"bad client %s"}`, secret)
			return
		}
		n := ts.calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": fmt.Sprintf("tok-%d", n), "token_type": "Bearer", "expires_in": expiresIn(n),
		})
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) tokenURL() string { return ts.URL + "/oauth/token" }

// authHeaders returns the Authorization header of every access call seen.
func authHeaders(api *fakeAPI) []string {
	var out []string
	for _, r := range api.requests() {
		out = append(out, r.Header.Get("Authorization"))
	}
	return out
}

func TestOAuth2TokenReused(t *testing.T) {
	ts := newTokenServer(t, func(int32) int { return 3600 })
	api := newFakeAPI(t, nil)
	token := OAuth2Token(t.Context(), ts.tokenURL(), oauthClientID, oauthClientSecret, oauthAudience)
	c := newTestClient(t, api.apiURL(), appCreds(), token)
	for range 2 {
		if _, err := c.Access(t.Context(), fixtureReq()); err != nil {
			t.Fatalf("Access: %v", err)
		}
	}
	if n := ts.calls.Load(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	want := []string{"Bearer tok-1", "Bearer tok-1"}
	if got := authHeaders(api); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Authorization headers = %q, want %q", got, want)
	}
}

func TestOAuth2TokenRenewed(t *testing.T) {
	// The first token expires within the early-expiry margin, so it is
	// stale at once and the next call gets a new one, which is then reused.
	ts := newTokenServer(t, func(n int32) int {
		if n == 1 {
			return 1
		}
		return 3600
	})
	api := newFakeAPI(t, nil)
	token := OAuth2Token(t.Context(), ts.tokenURL(), oauthClientID, oauthClientSecret, oauthAudience)
	c := newTestClient(t, api.apiURL(), appCreds(), token)
	for range 3 {
		if _, err := c.Access(t.Context(), fixtureReq()); err != nil {
			t.Fatalf("Access: %v", err)
		}
	}
	if n := ts.calls.Load(); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
	want := []string{"Bearer tok-1", "Bearer tok-2", "Bearer tok-2"}
	if got := authHeaders(api); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Authorization headers = %q, want %q", got, want)
	}
}

func TestOAuth2TokenConcurrent(t *testing.T) {
	ts := newTokenServer(t, func(int32) int { return 3600 })
	token := OAuth2Token(t.Context(), ts.tokenURL(), oauthClientID, oauthClientSecret, oauthAudience)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if tok, err := token(t.Context()); err != nil || tok != "tok-1" {
				t.Errorf("token = %q, %v; want tok-1", tok, err)
			}
		})
	}
	wg.Wait()
	if n := ts.calls.Load(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
}

func TestOAuth2TokenErrors(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		secret     string
		want       error
		wantHint   string
		retryAfter time.Duration
	}{
		{
			name:     "wrong secret",
			handler:  nil, // the token server rejects it, echoing it back
			secret:   "client-secret-wrong",
			want:     ErrUnauthorized,
			wantHint: "check the OAuth2 client id, client secret and audience",
		},
		{
			name: "unavailable",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "7")
				http.Error(w, "down "+oauthClientSecret, http.StatusServiceUnavailable)
			},
			secret: oauthClientSecret, want: ErrUnavailable, wantHint: "retryable", retryAfter: 7 * time.Second,
		},
		{
			name: "rate limited",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "2")
				w.WriteHeader(http.StatusTooManyRequests)
			},
			secret: oauthClientSecret, want: ErrRateLimited, retryAfter: 2 * time.Second,
		},
		{
			name: "not JSON",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte("{" + oauthClientSecret))
			},
			secret: oauthClientSecret, want: ErrTransport, wantHint: "check network access to the OAuth2 token URL",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokenURL := newTokenServer(t, func(int32) int { return 3600 }).tokenURL()
			if tt.handler != nil {
				srv := httptest.NewServer(tt.handler)
				t.Cleanup(srv.Close)
				tokenURL = srv.URL
			}
			api := newFakeAPI(t, nil)
			c := newTestClient(t, api.apiURL(), appCreds(), OAuth2Token(t.Context(), tokenURL, oauthClientID, tt.secret, oauthAudience))
			_, err := c.Access(t.Context(), fixtureReq())
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantHint) {
				t.Errorf("err = %q, want it to mention %q", err, tt.wantHint)
			}
			if d, _ := RetryAfter(err); d != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", d, tt.retryAfter)
			}
			assertNoSecrets(t, err)
			if n := len(api.requests()); n != 0 {
				t.Errorf("%d access calls made without a token, want 0", n)
			}
		})
	}
}

func TestOAuth2TokenHonoursCallContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	token := OAuth2Token(t.Context(), srv.URL, oauthClientID, oauthClientSecret, "")
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := token(ctx)
	if !errors.Is(err, ErrTransport) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want ErrTransport wrapping context.DeadlineExceeded", err)
	}
	assertNoSecrets(t, err)
}
