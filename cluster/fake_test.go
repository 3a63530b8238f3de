package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
	"github.com/datacore-bridge/datacore-bridge/metrics"
)

// event is a stream started or stopped on a fake supervisor.
type event struct {
	at      time.Time
	started bool
}

// fakeLocal is a supervisor whose streams connect at once (or after connect
// is closed, when set) and that records every start and stop.
type fakeLocal struct {
	mu      sync.Mutex
	streams map[ID]fixtures.State
	events  map[ID][]event
	onState func()
}

func newFakeLocal() *fakeLocal {
	return &fakeLocal{streams: map[ID]fixtures.State{}, events: map[ID][]event{}}
}

func (f *fakeLocal) FollowFrom(kind access.Kind, id string, _ fixtures.Source) (bool, error) {
	f.mu.Lock()
	key := ID{kind, id}
	if _, ok := f.streams[key]; ok {
		f.mu.Unlock()
		return false, nil
	}
	f.streams[key] = fixtures.StateConnected
	f.events[key] = append(f.events[key], event{at: time.Now(), started: true})
	wake := f.onState
	f.mu.Unlock()
	if wake != nil {
		wake()
	}
	return true, nil
}

func (f *fakeLocal) Unfollow(kind access.Kind, id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := ID{kind, id}
	if _, ok := f.streams[key]; !ok {
		return false
	}
	delete(f.streams, key)
	f.events[key] = append(f.events[key], event{at: time.Now()})
	return true
}

func (f *fakeLocal) State(kind access.Kind, id string) (fixtures.State, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.streams[ID{kind, id}]
	return s, ok
}

// running returns the IDs followed now.
func (f *fakeLocal) running() map[ID]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[ID]bool, len(f.streams))
	for id := range f.streams {
		out[id] = true
	}
	return out
}

func (f *fakeLocal) history(id ID) []event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]event(nil), f.events[id]...)
}

// member is one node of a test cluster with its own NATS connection.
type testMember struct {
	name  string
	node  *Node
	local *fakeLocal
	nc    *nats.Conn
	m     *metrics.Metrics
	stop  context.CancelFunc
	done  chan struct{}
}

// testCluster runs nodes against one embedded JetStream server.
type testCluster struct {
	t   *testing.T
	srv *natstest.Server
	ttl time.Duration
}

func newTestCluster(t *testing.T, ttl time.Duration) *testCluster {
	return &testCluster{t: t, srv: natstest.Run(t), ttl: ttl}
}

// start starts a member; mod may change its options.
func (c *testCluster) start(name string, replicas int, mod func(*Options)) *testMember {
	t := c.t
	t.Helper()
	nc := c.srv.Connect(t, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	local := newFakeLocal()
	m := metrics.New()
	o := Options{
		JetStream: js, Cluster: "test", Instance: name, Replicas: replicas, LeaseTTL: c.ttl,
		Local: local, Metrics: m, Settle: time.Millisecond,
	}
	if mod != nil {
		mod(&o)
	}
	node, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	local.mu.Lock()
	local.onState = node.wake
	local.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	tm := &testMember{name: name, node: node, local: local, nc: nc, m: m, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(tm.done)
		_ = node.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-tm.done
	})
	return tm
}

// crash ends a member the way SIGKILL would: its NATS connection is gone
// before it can let go of anything.
func (tm *testMember) crash() {
	tm.nc.Close()
	tm.stop()
	<-tm.done
}

// kv returns the followed bucket over a fresh connection.
func (c *testCluster) followedKV() jetstream.KeyValue {
	c.t.Helper()
	js := c.srv.JetStream(c.t)
	kv, err := js.KeyValue(context.Background(), FollowedBucket("test"))
	if err != nil {
		c.t.Fatal(err)
	}
	return kv
}

func ids(kind access.Kind, n int) []ID {
	out := make([]ID, n)
	for i := range out {
		out[i] = ID{kind, fmt.Sprintf("f%03d", i)}
	}
	return out
}

func seeds(list []ID) []Seed {
	out := make([]Seed, len(list))
	for i, id := range list {
		out[i] = Seed{ID: id, Source: fixtures.SourceEnv}
	}
	return out
}

// natstestRestart stops the NATS server and starts it again on the same
// port and store: what survives is what JetStream stored.
func natstestRestart(t *testing.T, c *testCluster) {
	t.Helper()
	c.srv.Stop()
	natstest.Rerun(t, c.srv)
}
