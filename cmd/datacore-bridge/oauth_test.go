package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// TestOAuthBearerOnAccessCalls runs the bridge against an access API that
// wants an OAuth2 bearer token: every access call carries it, and the token is
// fetched once and reused while valid, not per call.
func TestOAuthBearerOnAccessCalls(t *testing.T) {
	const clientSecret = "oauth-client-secret-7d6c5b"
	var tokenCalls, withBearer, withoutBearer atomic.Int64
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "client_credentials" || r.Form.Get("audience") != "datacore" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		if id, secret, ok := r.BasicAuth(); !(ok && id == "bridge" && secret == clientSecret) &&
			!(r.Form.Get("client_id") == "bridge" && r.Form.Get("client_secret") == clientSecret) {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		tokenCalls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "bearer-1", "token_type": "Bearer", "expires_in": 3600})
	}))
	t.Cleanup(tokenSrv.Close)

	var gate *httptest.Server
	e := newEnv(t, envOptions{
		sim: sim.Options{Fixtures: []string{"sr:match:50"}, GrantTTL: 2 * time.Second},
		configure: func(c *config.Config) {
			// The access API sits behind a gate that wants the bearer token.
			target, err := url.Parse(c.APIURL)
			if err != nil {
				t.Fatal(err)
			}
			proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
			gate = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer bearer-1" {
					withoutBearer.Add(1)
					http.Error(w, `{"message":"bearer token required"}`, http.StatusUnauthorized)
					return
				}
				withBearer.Add(1)
				proxy.ServeHTTP(w, r)
			}))
			c.APIURL = gate.URL + target.Path
			c.Fixtures = []string{"sr:match:50"}
			c.OAuthTokenURL, c.OAuthClientID, c.OAuthClientSecret, c.OAuthAudience = tokenSrv.URL, "bridge", clientSecret, "datacore"
		},
	})
	t.Cleanup(gate.Close)
	poll.Wait(t, 20*time.Second, "three rotations through the gate", func() bool {
		return testutil.ToFloat64(e.m.Rotations.WithLabelValues("ok")) >= 3
	})
	if n := withoutBearer.Load(); n != 0 {
		t.Errorf("%d access calls without the bearer token", n)
	}
	if n := withBearer.Load(); n < 4 {
		t.Errorf("%d access calls with the bearer token, want at least 4", n)
	}
	if n := tokenCalls.Load(); n != 1 {
		t.Errorf("token fetched %d times, want once (reused while valid)", n)
	}
	if logs := e.logs.String(); strings.Contains(logs, clientSecret) || strings.Contains(logs, "bearer-1") {
		t.Error("the OAuth client secret or token reached the logs")
	}
}
