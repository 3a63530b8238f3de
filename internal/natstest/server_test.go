package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestRunStopRerun checks that a restarted server comes back on the same
// port with the same JetStream store.
func TestRunStopRerun(t *testing.T) {
	s := Run(t)
	url, port := s.ClientURL(), s.Options.Port
	if port <= 0 || !s.JetStreamEnabled() {
		t.Fatalf("port %d, JetStream %v: want a chosen port and JetStream", port, s.JetStreamEnabled())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	js := s.JetStream(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEPT", Subjects: []string{"kept.>"}}); err != nil {
		t.Fatal(err)
	}

	s.Stop()
	if s.Running() {
		t.Fatal("running after Stop")
	}
	Rerun(t, s)
	if got := s.ClientURL(); got != url {
		t.Fatalf("ClientURL after Rerun = %s, want %s", got, url)
	}
	if _, err := s.JetStream(t).Stream(ctx, "KEPT"); err != nil {
		t.Fatalf("stream after Rerun: %v", err)
	}
}

// TestRunOptions checks that mods apply in turn and a server without
// JetStream has no store.
func TestRunOptions(t *testing.T) {
	s := Run(t, func(o *server.Options) { o.JetStream = false }, UserPassword("u", "p"))
	if s.JetStreamEnabled() || s.Options.StoreDir != "" {
		t.Fatalf("JetStream %v, store %q: want neither", s.JetStreamEnabled(), s.Options.StoreDir)
	}
	if _, err := nats.Connect(s.ClientURL()); err == nil {
		t.Fatal("connected without the password")
	}
	s.Connect(t, nats.UserInfo("u", "p"))
}
