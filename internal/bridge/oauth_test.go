package bridge_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/internal/bridge"
	"github.com/datacore-bridge/datacore-bridge/internal/testbed"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// TestShutdownCancelsOAuthTokenRequest starts the bridge with an OAuth token
// endpoint that never answers: the token request the first access call makes
// must end when the bridge shuts down, not when the HTTP client's own
// timeout (15 s) gives up on it.
func TestShutdownCancelsOAuthTokenRequest(t *testing.T) {
	arrived := make(chan struct{}, 1)
	cancelled := make(chan struct{}, 1)
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a closed connection only once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-r.Context().Done()
		select {
		case cancelled <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(tokenSrv.Close)

	emu, err := testbed.StartEmulator(context.Background(), sim.Options{CredentialID: "oauth-id", CredentialSecret: "oauth-secret",
		Fixtures: []string{"sr:match:1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	ns, err := testbed.StartNATS(testbed.NATSOptions(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)

	cfg := config.Defaults()
	cfg.APIURL = emu.APIURL()
	cfg.CredentialID, cfg.CredentialSecret = "oauth-id", "oauth-secret"
	cfg.Fixtures = []string{"sr:match:1"}
	cfg.NATSURLs = []string{ns.ClientURL()}
	cfg.HTTPAddr = ""
	cfg.OAuthTokenURL, cfg.OAuthClientID, cfg.OAuthClientSecret = tokenSrv.URL, "bridge", "oauth-client-secret"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := bridge.Start(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), bridge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		_ = b.Shutdown(context.Background())
		t.Fatal("no token request within 10 s")
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the token request was still open 5 s after Shutdown returned")
	}
}
