package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// TestCompressedData follows a fixture whose feed sends compressedData: by
// default the payload reaches NATS byte for byte (compressedData kept); with
// DATACORE_DECOMPRESS it arrives inflated into data.
func TestCompressedData(t *testing.T) {
	tests := []struct {
		name       string
		decompress bool
	}{
		{name: "untouched by default", decompress: false},
		{name: "inflated with DATACORE_DECOMPRESS", decompress: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{
				sim: sim.Options{Fixtures: []string{"sr:match:70"}, Feed: sim.Feed{Rate: 50, Compress: true}},
				configure: func(c *config.Config) {
					c.Fixtures = []string{"sr:match:70"}
					c.Decompress = tt.decompress
				},
			})
			nc, err := nats.Connect(e.ns.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			sub, err := nc.SubscribeSync(e.subjectOf("fixture", "sr:match:70", sim.ScopeEvents))
			if err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				msg, err := sub.NextMsg(10 * time.Second)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				var env struct {
					Data           *struct{ Seq uint64 } `json:"data"`
					CompressedData *string               `json:"compressedData"`
				}
				if err := json.Unmarshal(msg.Data, &env); err != nil {
					t.Fatalf("payload is not JSON: %v: %s", err, msg.Data)
				}
				if tt.decompress {
					if env.CompressedData != nil || env.Data == nil || env.Data.Seq == 0 {
						t.Fatalf("not inflated: %s", msg.Data)
					}
				} else if env.CompressedData == nil || env.Data != nil {
					t.Fatalf("payload changed: %s", msg.Data)
				}
			}
			if n := testutil.ToFloat64(e.m.DecompressErrors); n != 0 {
				t.Errorf("decompress errors = %v", n)
			}
		})
	}
}

// TestFinishedFixtureIsUnfollowed plays a short game: once the fixture's
// status is CONFIRMED the bridge stops following it after the grace.
func TestFinishedFixtureIsUnfollowed(t *testing.T) {
	e := newEnv(t, envOptions{
		sim: sim.Options{Fixtures: []string{"sr:match:80", "sr:match:81"}, Feed: sim.Feed{Rate: 50, GameLength: 2 * time.Second}},
		configure: func(c *config.Config) {
			c.Fixtures = []string{"sr:match:80"}
			c.StopAfterFinal = 300 * time.Millisecond
		},
	})
	poll.Wait(t, 30*time.Second, "the finished fixture to be unfollowed", func() bool {
		return len(e.subscriptions()) == 0
	})
	if n := testutil.ToFloat64(e.m.FixturesFinished); n != 1 {
		t.Errorf("fixtures_finished_total = %v, want 1", n)
	}
	if !strings.Contains(e.logs.String(), "fixture status is final; will stop following") {
		t.Error("the final status was not logged")
	}
	// The bridge keeps serving: another fixture can be followed.
	if code, body := e.do(http.MethodPut, "/v1/fixtures/sr:match:81", testAdminToken); code != http.StatusCreated {
		t.Fatalf("PUT after the unfollow = %d %s", code, body)
	}
}
