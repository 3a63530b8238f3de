package bridge

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/datacore-bridge/datacore-bridge/config"
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

	emu, err := sim.Start(context.Background(), sim.Options{CredentialID: "oauth-id", CredentialSecret: "oauth-secret",
		Fixtures: []string{"sr:match:1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server did not start")
	}

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
	b, err := Start(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), Options{})
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
