package bridge_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/bridge"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/internal/testbed"
)

// TestDiscoveryWiring starts the bridge with an organization only, against a
// fake REST token endpoint and listing: the listed live fixture is followed
// with source discovery, GET /v1/discovery reports the poll, and once the
// listing refuses the token for good /readyz names the discovery failure.
// Shutdown stops the poller.
func TestDiscoveryWiring(t *testing.T) {
	var refuse atomic.Bool
	var tokens atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/oauth2/rest/token":
			n := tokens.Add(1)
			_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"token": "rt-" + string(rune('0'+n)), "tokenType": "bearer", "expiresIn": 3600}})
		case r.URL.Path == "/v1/basketball/o/org1/fixtures":
			if refuse.Load() || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer rt-") {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"message":"Unauthorized"}`)
				return
			}
			start := time.Now().Add(-10 * time.Minute).UTC().Format("2006-01-02T15:04:05")
			_, _ = io.WriteString(w, `{"meta":{"count":1,"limit":100,"offset":0},"links":{},"data":[{"fixtureId":"sr:match:7","status":"IN_PROGRESS","startTimeUTC":"`+start+`"}]}`)
		default:
			w.WriteHeader(http.StatusNotFound) // stream access: not part of this test
			_, _ = io.WriteString(w, `{"message":"not here"}`)
		}
	}))
	t.Cleanup(srv.Close)
	ns, err := testbed.StartNATS(testbed.NATSOptions(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)

	cfg := config.Defaults()
	cfg.APIURL = srv.URL + "/v1"
	cfg.RESTURL = srv.URL + "/v1"
	cfg.CredentialID, cfg.CredentialSecret = "id", "secret"
	cfg.Organizations = []string{"org1"}
	cfg.DiscoverInterval = time.Second
	cfg.NATSURLs = []string{ns.ClientURL()}
	cfg.HTTPAddr = "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := bridge.Start(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), bridge.Options{FailedRetry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = b.Shutdown(context.Background())
		}
	})
	poll.Wait(t, 10*time.Second, "the listed fixture to be followed", func() bool {
		for _, s := range b.Supervisor().Streams() {
			if s.Kind == access.Fixture && s.ID == "sr:match:7" && s.Source == fixtures.SourceDiscovery {
				return true
			}
		}
		return false
	})
	base := "http://" + b.Addr().String()
	var st struct {
		Organizations []string   `json:"organizations"`
		LastListingAt *time.Time `json:"lastListingAt"`
		Discovered    int        `json:"discovered"`
	}
	getJSON(t, base+"/v1/discovery", &st)
	if len(st.Organizations) != 1 || st.Organizations[0] != "org1" || st.LastListingAt == nil || st.Discovered != 1 {
		t.Errorf("/v1/discovery = %+v", st)
	}

	refuse.Store(true)
	poll.Wait(t, 10*time.Second, "/readyz to name the discovery failure", func() bool {
		var r struct{ Reason string }
		code := getJSON(t, base+"/readyz", &r)
		return code == http.StatusServiceUnavailable && strings.Contains(r.Reason, "discovery: listing organization org1: token rejected (401)")
	})
	if got := len(b.Supervisor().Streams()); got != 1 {
		t.Errorf("%d streams after the listing failed, want the discovered one kept", got)
	}
	stopped = true
	if err := b.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// getJSON GETs url into v and returns the status.
func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return resp.StatusCode
}
