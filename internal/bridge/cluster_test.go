package bridge_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/discovery"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/bridge"
	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/internal/testbed"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// TestClusterDiscoveryHasOneLeader starts two bridges of one cluster on one
// emulator and one JetStream server, both following an organization: only
// one lists its fixtures at a time, the games it finds are followed by
// exactly one of them, the other's GET /v1/discovery names the leader, and
// once the leader stops the other lists and keeps every game followed.
func TestClusterDiscoveryHasOneLeader(t *testing.T) {
	so := sim.Options{
		Organizations: []string{"o1"},
		Schedule:      sim.Schedule{Every: time.Hour, Lead: time.Hour, Past: 2, Length: time.Hour},
	}
	emu, err := testbed.StartEmulator(context.Background(), so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	ns := natstest.Run(t)

	start := func(instance string) *bridge.Bridge {
		cfg := testbed.Config(emu.APIURL(), so, ns.ClientURL(), true)
		cfg.RESTURL = emu.RESTURL()
		cfg.Organizations = []string{"o1"}
		cfg.DiscoverInterval = time.Second
		cfg.Cluster, cfg.Instance, cfg.LeaseTTL = "t", instance, 2*time.Second
		cfg.ShutdownTimeout = 10 * time.Second
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		b, err := bridge.Start(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), bridge.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
		return b
	}
	a, b := start("a"), start("b")
	runs := func(x *bridge.Bridge) float64 {
		return testutil.ToFloat64(x.Metrics().DiscoveryRuns.WithLabelValues("ok"))
	}

	// The listing shows the games that started: each is followed by one bridge.
	var leader, other *bridge.Bridge
	var games int
	poll.Wait(t, 20*time.Second, "a leader to list and the game to be followed", func() bool {
		ra, rb := runs(a), runs(b)
		switch {
		case ra > 0 && rb == 0:
			leader, other = a, b
		case rb > 0 && ra == 0:
			leader, other = b, a
		default:
			return false
		}
		games = len(a.Cluster().Status().Followed)
		return games > 0 && followedBy(a)+followedBy(b) == games
	})
	before := runs(other)
	poll.Wait(t, 10*time.Second, "two more polls by the leader", func() bool { return runs(leader) >= 3 })
	if runs(other) != before {
		t.Errorf("the other bridge listed too (%v polls): only one lists at a time", runs(other))
	}
	var ds discovery.Status
	if code := getJSON(t, "http://"+other.Addr().String()+"/v1/discovery", &ds); code != http.StatusOK {
		t.Fatalf("GET /v1/discovery = %d", code)
	}
	if ds.Leader != leader.Cluster().Instance() || len(ds.Organizations) != 1 {
		t.Errorf("the other's /v1/discovery = %+v, want leader %s", ds, leader.Cluster().Instance())
	}

	if err := leader.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	poll.Wait(t, 10*time.Second, "the other bridge to list and follow the game", func() bool {
		return runs(other) > before && followedBy(other) == games
	})
	if got := testutil.ToFloat64(other.Metrics().ClusterLeader); got != 1 {
		t.Errorf("cluster_discovery_leader = %v on the new leader", got)
	}
}

// followedBy counts the fixtures b follows that discovery added.
func followedBy(b *bridge.Bridge) int {
	n := 0
	for _, s := range b.Supervisor().Streams() {
		if s.Kind == access.Fixture && s.Source == fixtures.SourceDiscovery && s.State == fixtures.StateConnected {
			n++
		}
	}
	return n
}
