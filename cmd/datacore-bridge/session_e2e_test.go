package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// TestStoppedStreamLeavesNoSession follows a fixture in JetStream mode
// (persistent MQTT sessions), rotating every couple of seconds, then stops
// it for good: the emulator's broker is left with no subscribed session of
// it, neither the current connection's nor those of connections retired by
// rotation.
func TestStoppedStreamLeavesNoSession(t *testing.T) {
	tests := []struct {
		name string
		stop func(t *testing.T, e *env, id string)
	}{
		{
			name: "unfollowed with DELETE",
			stop: func(t *testing.T, e *env, id string) {
				if code, body := e.do(http.MethodDelete, "/v1/fixtures/"+id, testAdminToken); code != http.StatusNoContent {
					t.Fatalf("DELETE = %d %s, want 204", code, body)
				}
			},
		},
		{
			name: "shutdown",
			stop: func(t *testing.T, e *env, _ string) {
				if err := e.b.Shutdown(context.Background()); err != nil {
					t.Fatalf("shutdown: %v", err)
				}
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("sr:match:50%d", i)
			e := newEnv(t, envOptions{
				jetStream: true,
				sim:       sim.Options{Fixtures: []string{id}, GrantTTL: 4 * time.Second, Feed: sim.Feed{Rate: 20}},
				configure: func(c *config.Config) { c.Fixtures = []string{id} },
			})
			col := e.collect()
			subject := e.subjectOf("fixture", id, sim.ScopeEvents)
			rotated := func() bool { return e.emu.Stats().Grants >= 2 }
			poll.Wait(t, 20*time.Second, "messages and a rotation", func() bool { return col.count(subject) >= 10 && rotated() })
			poll.Wait(t, 10*time.Second, "a subscribed persistent session", func() bool {
				for _, s := range e.emu.Sessions() {
					if s.Persistent && len(s.Subscriptions) > 0 {
						return true
					}
				}
				return false
			})
			tt.stop(t, e, id)
			poll.Wait(t, 10*time.Second, "no subscribed session left at the broker", func() bool {
				for _, s := range e.emu.Sessions() {
					if len(s.Subscriptions) > 0 {
						return false
					}
				}
				return true
			})
			// Sessions are ended with a clean CONNECT while their grant is
			// valid; one whose grant expired first (a retired connection,
			// on a slow machine) is left without subscription to expire.
			poll.Wait(t, 10*time.Second, "no connection left", func() bool {
				for _, s := range e.emu.Sessions() {
					if s.Connected {
						return false
					}
				}
				return true
			})
			left := e.emu.Sessions()
			for _, s := range left {
				if len(s.Subscriptions) > 0 {
					t.Errorf("session %s left subscribed to %v", s.ClientID, s.Subscriptions)
				}
			}
			t.Logf("%d unsubscribed sessions left to expire", len(left))
		})
	}
}
