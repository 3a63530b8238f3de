package bridge

import (
	"context"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/cluster"
	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/discovery"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/metrics"
)

// newNode builds the cluster node: the configured IDs seed the shared
// followed set, and discovery runs on whichever member holds the leadership.
func newNode(nc *nats.Conn, ac *access.Client, sup *fixtures.Supervisor, cfg *config.Config, log *slog.Logger,
	m *metrics.Metrics, httpAddr string, disc *leaderDiscovery) (*cluster.Node, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	instance := cfg.Instance
	if instance == "" {
		instance = cluster.DefaultInstance()
	}
	var seed []cluster.Seed
	for _, id := range cfg.Fixtures {
		seed = append(seed, cluster.Seed{ID: cluster.ID{Kind: access.Fixture, ID: id}, Source: fixtures.SourceEnv})
	}
	for _, id := range cfg.Venues {
		seed = append(seed, cluster.Seed{ID: cluster.ID{Kind: access.Venue, ID: id}, Source: fixtures.SourceEnv})
	}
	o := cluster.Options{
		JetStream:      js,
		Cluster:        cfg.Cluster,
		Instance:       instance,
		Replicas:       cfg.Replicas,
		LeaseTTL:       cfg.LeaseTTL,
		KVReplicas:     cfg.KVReplicas,
		Local:          sup,
		Seed:           seed,
		MaxFollowed:    cfg.MaxStreams,
		StopAfterFinal: cfg.StopAfterFinal,
		HTTPAddr:       httpAddr,
		Metrics:        m,
		Logger:         log.With("component", "cluster"),
	}
	var node *cluster.Node
	if disc != nil {
		o.Leader = func(ctx context.Context) {
			p, err := newDiscovery(ac, node, cfg, log, m)
			if err != nil {
				log.Error("cannot start discovery", "err", err)
				return
			}
			disc.set(p)
			defer disc.set(nil)
			_ = p.Run(ctx)
		}
	}
	node, err = cluster.New(o)
	if err != nil {
		return nil, err
	}
	disc.setNode(node)
	return node, nil
}

// leaderDiscovery is GET /v1/discovery in cluster mode: the poller while this
// process is the leader, else who is.
type leaderDiscovery struct {
	orgs []string
	mu   sync.Mutex
	p    *discovery.Poller
	node *cluster.Node
}

func (d *leaderDiscovery) set(p *discovery.Poller) {
	d.mu.Lock()
	d.p = p
	d.mu.Unlock()
}

func (d *leaderDiscovery) setNode(n *cluster.Node) {
	if d == nil {
		return
	}
	d.mu.Lock()
	d.node = n
	d.mu.Unlock()
}

// Status is the poller's status on the leader; elsewhere only the
// organizations and the leader's name.
func (d *leaderDiscovery) Status() discovery.Status {
	d.mu.Lock()
	p, node := d.p, d.node
	d.mu.Unlock()
	if p != nil {
		st := p.Status()
		st.Leader = node.Instance()
		return st
	}
	st := discovery.Status{Organizations: d.orgs}
	if node != nil {
		st.Leader = node.Leader()
	}
	return st
}

// Ready is the poller's readiness on the leader; nil elsewhere.
func (d *leaderDiscovery) Ready() error {
	d.mu.Lock()
	p := d.p
	d.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Ready()
}
