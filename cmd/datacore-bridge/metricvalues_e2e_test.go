package main

import (
	"testing"
	"time"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// TestMetricValues checks metrics by value, not only by name:
// datacore_nats_connected is 1 while NATS is up, 0 while its server is down
// and 1 again once it is back; datacore_publish_latency_seconds observes
// every message published, no more and no fewer.
func TestMetricValues(t *testing.T) {
	tests := []struct {
		name      string
		jetStream bool
	}{
		{name: "core", jetStream: false},
		{name: "jetstream", jetStream: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const id = "sr:match:70"
			e := newEnv(t, envOptions{
				sim:       sim.Options{Fixtures: []string{id}, Feed: sim.Feed{Rate: 200}},
				jetStream: tt.jetStream,
				configure: func(c *config.Config) { c.Fixtures = []string{id} },
			})
			connected := func() float64 { return gather(t, e.m.Registry).value("datacore_nats_connected") }
			published := func() float64 { return gather(t, e.m.Registry).sum("datacore_messages_published_total", "") }

			poll.Wait(t, 10*time.Second, "nats_connected = 1 and messages published", func() bool {
				return connected() == 1 && published() > 0
			})
			e.ns.Shutdown()
			poll.Wait(t, 10*time.Second, "nats_connected = 0 while the NATS server is down", func() bool { return connected() == 0 })
			e.startNATS()
			before := published()
			poll.Wait(t, 15*time.Second, "nats_connected = 1 and messages published again once NATS is back", func() bool {
				return connected() == 1 && published() > before
			})

			// Stop the stream and wait until nothing is left in flight: the
			// histogram and the counter are then final, read in one gather.
			e.b.Supervisor().Unfollow(access.Fixture, id)
			poll.Wait(t, 15*time.Second, "the stream to stop with nothing in flight", func() bool {
				s := gather(t, e.m.Registry)
				return s.sum("datacore_streams", "") == 0 && s.sum("datacore_inflight_messages", "") == 0
			})
			s := gather(t, e.m.Registry)
			n, pub := s.count("datacore_publish_latency_seconds"), s.sum("datacore_messages_published_total", "")
			t.Logf("%d latency observations, %.0f messages published", n, pub)
			if pub == 0 || float64(n) != pub {
				t.Errorf("publish_latency_seconds observed %d times, want once per message published (%.0f)", n, pub)
			}
		})
	}
}
