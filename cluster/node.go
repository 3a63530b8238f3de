package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/backoff"
	"github.com/datacore-bridge/datacore-bridge/internal/loglimit"
	"github.com/datacore-bridge/datacore-bridge/metrics"
)

// ErrUnavailable is wrapped by the errors of Follow and Unfollow when the KV
// buckets cannot be reached: nothing was changed, and the call may be retried.
var ErrUnavailable = errors.New("cluster: JetStream KV unavailable")

// ID names a fixture or venue.
type ID struct {
	Kind access.Kind `json:"kind"`
	ID   string      `json:"id"`
}

func (id ID) key() string { return FollowedKey(id.Kind, id.ID) }

// Local is the process's own supervisor of streams; *fixtures.Supervisor is
// one. The node starts and stops streams on it as ownership moves.
type Local interface {
	FollowFrom(kind access.Kind, id string, source fixtures.Source) (bool, error)
	Unfollow(kind access.Kind, id string) bool
	// State is a followed stream's state; false when it is not followed.
	State(kind access.Kind, id string) (fixtures.State, bool)
}

// Seed is an ID added to the followed set at start unless its key exists or
// was deleted (env IDs: a removal sticks across restarts).
type Seed struct {
	ID
	Source fixtures.Source
}

// Options configure a Node. JetStream, Cluster, Instance and Local are required.
type Options struct {
	JetStream jetstream.JetStream
	// Cluster names the buckets (see FollowedBucket and LeasesBucket).
	Cluster string
	// Instance is this process's member name, unique among live processes.
	Instance string
	// Replicas is how many members own each ID; default 1.
	Replicas int
	// KVReplicas is the replicas of the buckets when this Node creates
	// them; default 1. Existing buckets are used as they are.
	KVReplicas int
	// LeaseTTL is how long a membership or lease lives without renewal;
	// default 10 s. The leases bucket's own TTL wins when it differs.
	LeaseTTL time.Duration
	// Local runs the streams this process owns.
	Local Local
	// Seed is added to the followed set once, at start.
	Seed []Seed
	// MaxFollowed bounds the followed set for Follow; default 1000.
	MaxFollowed int
	// StopAfterFinal is how long after a final status (seen in a listing) a
	// fixture leaves the followed set; 0 never.
	StopAfterFinal time.Duration
	// HTTPAddr is shown in GET /v1/cluster, to find a member's API.
	HTTPAddr string
	// Leader, when set, runs while this process holds the discovery
	// leadership; its ctx ends when the leadership does.
	Leader func(ctx context.Context)
	// Settle is how long a process that just joined waits before taking
	// streams, so that processes started together split the set at once
	// instead of taking everything and handing it over; default min(TTL/2, 2s).
	Settle time.Duration
	// Metrics counts; nil counts into metrics.Discard().
	Metrics *metrics.Metrics
	// Logger logs; nil discards.
	Logger *slog.Logger
}

// member is a member key's value.
type member struct {
	Instance  string    `json:"instance"`
	StartedAt time.Time `json:"startedAt"`
	HTTP      string    `json:"http,omitempty"`
	Replicas  int       `json:"replicas"`
	Draining  bool      `json:"draining"`
	// Incarnation tells this Node's writes from those of another process
	// with the same instance name (or an earlier life of this one).
	Incarnation string `json:"incarnation"`
}

// lease is an owner key's value: who owns the stream and in which state.
type lease struct {
	Instance string          `json:"instance"`
	State    fixtures.State  `json:"state"`
	Since    time.Time       `json:"since"`
	Source   fixtures.Source `json:"source,omitempty"`
}

// followedValue is a followed key's value. Every field is optional: an
// operator may put "{}".
type followedValue struct {
	Source  fixtures.Source `json:"source,omitempty"`
	AddedAt time.Time       `json:"addedAt,omitzero"`
	AddedBy string          `json:"addedBy,omitempty"`
}

// followedEntry is a followed ID as the node sees it.
type followedEntry struct {
	id     ID
	source fixtures.Source
}

// ownerView is a lease as the watcher saw it.
type ownerView struct {
	lease
	renewed time.Time // the entry's time at the server
}

// held is a stream this process owns.
type held struct {
	id     ID
	source fixtures.Source
	rev    uint64 // of the owner key; 0 while not written
	state  fixtures.State
	since  time.Time
	// written is the state last written to the owner key.
	written fixtures.State
	// lostAt is the vanished owner's last renewal when this is a failover,
	// until the stream connects; zero otherwise.
	lostAt   time.Time
	lostFrom string
}

// Node is one process's part in a cluster: it keeps its membership, owns the
// streams that rendezvous hashing gives it, and hands them over when members
// come and go. Create it with New and run it with Run.
type Node struct {
	o         Options
	log       *slog.Logger
	m         *metrics.Metrics
	warn      *loglimit.Limiter
	kick      chan struct{}
	drain     chan struct{} // closed by Drain
	drainOnce sync.Once
	done      chan struct{} // closed when Run returns

	followedKV, leasesKV jetstream.KeyValue // set by Run before anything reads them

	mu sync.Mutex
	// The view, from the watchers.
	followed     map[string]followedEntry        // followed key → ID
	members      map[string]member               // instance → member
	owners       map[string]map[string]ownerView // followed key → instance → lease
	lost         map[string]ownerView            // followed key → an owner whose lease expired
	leader       string
	followedInit bool
	leasesInit   bool
	// Written by the loop, read by Status and Ready.
	held        map[string]*held // followed key → stream owned here
	joined      bool
	joinedAt    time.Time
	fenced      bool
	draining    bool
	leading     bool
	lastRenewOK time.Time
	kvErr       error
	ttl         time.Duration
	finals      map[string]*time.Timer // fixtures leaving the set after a final status
	removals    map[string]ID          // finished IDs still to delete from the set
	// turn is closed, and replaced, at the end of each turn of the loop.
	turn chan struct{}
	// incarnation is random per Node: see member.Incarnation.
	incarnation string
	startedAt   time.Time
}

// New checks the options and returns a Node.
func New(o Options) (*Node, error) {
	switch {
	case o.JetStream == nil || o.Local == nil:
		return nil, errors.New("cluster: JetStream and Local are required")
	case ValidateName(o.Cluster) != nil:
		return nil, fmt.Errorf("cluster: Cluster: %w", ValidateName(o.Cluster))
	case ValidateName(o.Instance) != nil:
		return nil, fmt.Errorf("cluster: Instance: %w", ValidateName(o.Instance))
	case o.Replicas < 0 || o.Replicas > MaxReplicas:
		return nil, fmt.Errorf("cluster: Replicas must be from 1 to %d", MaxReplicas)
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 10 * time.Second
	}
	if o.MaxFollowed <= 0 {
		o.MaxFollowed = 1000
	}
	if o.Settle <= 0 {
		o.Settle = min(o.LeaseTTL/2, 2*time.Second)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.Discard()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Node{
		o:        o,
		log:      o.Logger.With("cluster", o.Cluster, "instance", o.Instance),
		m:        o.Metrics,
		warn:     loglimit.New(time.Minute),
		kick:     make(chan struct{}, 1),
		drain:    make(chan struct{}),
		done:     make(chan struct{}),
		followed: map[string]followedEntry{},
		members:  map[string]member{},
		owners:   map[string]map[string]ownerView{},
		lost:     map[string]ownerView{},
		held:     map[string]*held{},
		ttl:      o.LeaseTTL,
		finals:   map[string]*time.Timer{},
		removals: map[string]ID{},
		kvErr:    errors.New("not connected to the KV buckets yet"),
		turn:     make(chan struct{}),
	}, nil
}

// Instance is this process's member name.
func (n *Node) Instance() string { return n.o.Instance }

// wake asks the loop to look at the view again.
func (n *Node) wake() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// StateChanged tells the node that a local stream changed state, so that its
// lease shows it soon (a handover waits for the new owner's "connected"). It
// is meant for fixtures.Options.OnStateChange: it takes no lock and does not
// block.
func (n *Node) StateChanged(access.Kind, string, fixtures.State) { n.wake() }

// Finished removes a fixture whose status became final from the followed
// set, for every member (meant for fixtures.Options.Finished). A KV failure is
// retried in the background.
func (n *Node) Finished(kind access.Kind, id string) {
	n.mu.Lock()
	n.removals[FollowedKey(kind, id)] = ID{kind, id}
	n.mu.Unlock()
	n.wake()
}

// Run joins the cluster and keeps this process's part until ctx is done, then
// lets go of its streams, leases and membership and returns nil. It retries
// with backoff while the KV buckets cannot be reached.
func (n *Node) Run(ctx context.Context) error {
	defer close(n.done)
	bo := backoff.New(backoff.Policy{Min: 250 * time.Millisecond, Max: 10 * time.Second})
	for {
		err := n.setup(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		n.setKVErr(err)
		if ok, suppressed := n.warn.Allow("setup"); ok {
			n.log.Warn("cannot open the cluster's KV buckets; retrying: check that the NATS server (2.11 or later: the leases expire by per-key markers) has JetStream enabled, that it can hold the buckets' replicas, and that this user may create and use KV buckets",
				"followed_bucket", FollowedBucket(n.o.Cluster), "leases_bucket", LeasesBucket(n.o.Cluster), "err", err, "suppressed", suppressed)
		}
		if !sleep(ctx, bo.Next()) {
			return nil
		}
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); n.watch(watchCtx, n.followedKV, n.applyFollowed, n.followedReady) }()
	go func() { defer wg.Done(); n.watch(watchCtx, n.leasesKV, n.applyLease, n.leasesReady) }()
	defer wg.Wait()
	defer stopWatch()

	n.loop(ctx)
	n.leave()
	return nil
}

// Done is closed once Run has returned.
func (n *Node) Done() <-chan struct{} { return n.done }

// setup opens (or creates) the two buckets.
func (n *Node) setup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	js := n.o.JetStream
	fkv, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      FollowedBucket(n.o.Cluster),
		Description: "datacore-bridge cluster " + n.o.Cluster + ": the followed fixtures and venues, one key each (fixture.<id>, venue.<id>)",
		History:     1,
		Replicas:    n.o.KVReplicas,
	})
	if err != nil {
		return err
	}
	want := jetstream.KeyValueConfig{
		Bucket:         LeasesBucket(n.o.Cluster),
		Description:    "datacore-bridge cluster " + n.o.Cluster + ": members, stream leases and the discovery leader; keys expire unless renewed",
		History:        1,
		TTL:            n.o.LeaseTTL,
		LimitMarkerTTL: n.o.LeaseTTL,
		Replicas:       n.o.KVReplicas,
	}
	lkv, err := openBucket(ctx, js, want)
	if err != nil {
		return err
	}
	st, err := lkv.Status(ctx)
	if err != nil {
		return err
	}
	ttl := st.TTL()
	if st.LimitMarkerTTL() <= 0 {
		// Without markers a watcher never hears that a key expired, and a
		// killed member would never be replaced.
		want.TTL = ttl
		if lkv, err = js.UpdateKeyValue(ctx, want); err != nil {
			return fmt.Errorf("leases bucket %s has no limit markers and cannot be updated to have them: %w", want.Bucket, err)
		}
	}
	if ttl <= 0 {
		return fmt.Errorf("leases bucket %s has no TTL: delete it (it holds only leases) and restart", want.Bucket)
	}
	if ttl != n.o.LeaseTTL {
		n.log.Warn("the leases bucket has another TTL than the configured lease TTL: using the bucket's, which every member shares; to change it, stop every member and delete the bucket (it holds only leases)",
			"bucket", want.Bucket, "bucket_ttl", ttl.String(), "lease_ttl", n.o.LeaseTTL.String())
	}
	n.mu.Lock()
	n.ttl = ttl
	n.mu.Unlock()
	n.mu.Lock()
	n.followedKV, n.leasesKV = fkv, lkv
	n.mu.Unlock()
	return nil
}

// openBucket opens a bucket, creating it when it does not exist.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
	}
	kv, err = js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) { // created meanwhile by another member
		kv, err = js.KeyValue(ctx, cfg.Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// watch follows every key of kv: the current values first (then ready is
// called), then every change. A watcher that ends is started again, and its
// first replay replaces what was known.
func (n *Node) watch(ctx context.Context, kv jetstream.KeyValue, apply func(e jetstream.KeyValueEntry, replay bool), ready func(reset bool)) {
	bo := backoff.New(backoff.Policy{Min: 250 * time.Millisecond, Max: 5 * time.Second})
	first := true
	for ctx.Err() == nil {
		w, err := kv.WatchAll(ctx)
		if err != nil {
			if ok, suppressed := n.warn.Allow("watch " + kv.Bucket()); ok {
				n.log.Warn("cannot watch a cluster bucket; retrying", "bucket", kv.Bucket(), "err", err, "suppressed", suppressed)
			}
			if !sleep(ctx, bo.Next()) {
				return
			}
			continue
		}
		bo.Reset()
		replay := true
		if !first {
			ready(true) // forget what the new replay will tell again
		}
		first = false
		for {
			var e jetstream.KeyValueEntry
			var ok bool
			select {
			case <-ctx.Done():
				_ = w.Stop()
				return
			case e, ok = <-w.Updates():
			}
			if !ok {
				break
			}
			if e == nil {
				replay = false
				ready(false)
				continue
			}
			apply(e, replay)
		}
		_ = w.Stop()
	}
}

// followedReady marks the followed set known (reset: about to be told again).
func (n *Node) followedReady(reset bool) {
	n.mu.Lock()
	if reset {
		clear(n.followed)
	}
	n.followedInit = !reset
	n.mu.Unlock()
	n.wake()
}

func (n *Node) leasesReady(reset bool) {
	n.mu.Lock()
	if reset {
		clear(n.members)
		clear(n.owners)
		n.leader = ""
	}
	n.leasesInit = !reset
	n.mu.Unlock()
	n.wake()
}

func isRemoval(op jetstream.KeyValueOp) bool {
	return op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge
}

// applyFollowed takes in a change of the followed bucket.
func (n *Node) applyFollowed(e jetstream.KeyValueEntry, _ bool) {
	id, ok := parseFollowedKey(e.Key())
	if ok && fixtures.ValidateID(id.ID) != nil {
		ok = false
	}
	if !ok {
		if ok, _ := n.warn.Allow("bad followed key"); ok {
			n.log.Warn("ignoring a key of the followed bucket that names no fixture or venue: keys are fixture.<id> or venue.<id>, the ID encoded as the README says", "key", loglimit.Truncate(e.Key(), 256))
		}
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if isRemoval(e.Operation()) {
		delete(n.followed, e.Key())
	} else {
		var v followedValue
		_ = json.Unmarshal(e.Value(), &v) // an operator's value may be anything
		if v.Source == "" {
			v.Source = fixtures.SourceAdmin
		}
		n.followed[e.Key()] = followedEntry{id: id, source: v.Source}
	}
	n.setFollowedGauges()
	n.wake()
}

// setFollowedGauges sets datacore_cluster_followed. n.mu is held.
func (n *Node) setFollowedGauges() {
	var fx, vn int
	for _, f := range n.followed {
		if f.id.Kind == access.Fixture {
			fx++
		} else {
			vn++
		}
	}
	n.m.ClusterFollowed.WithLabelValues(string(access.Fixture)).Set(float64(fx))
	n.m.ClusterFollowed.WithLabelValues(string(access.Venue)).Set(float64(vn))
}

// applyLease takes in a change of the leases bucket: a member, a lease or
// the discovery leader. It wakes the loop only for what can change a
// decision, not for a renewal.
func (n *Node) applyLease(e jetstream.KeyValueEntry, _ bool) {
	key, removed := e.Key(), isRemoval(e.Operation())
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case key == leaderKey:
		was := n.leader
		n.leader = ""
		if !removed {
			n.leader, _, _ = strings.Cut(string(e.Value()), " ")
		}
		if n.leader != was {
			n.wake()
		}
	case len(key) > len(memberPrefix) && key[:len(memberPrefix)] == memberPrefix:
		inst := key[len(memberPrefix):]
		old, had := n.members[inst]
		if removed {
			delete(n.members, inst)
			if e.Operation() == jetstream.KeyValuePurge && inst != n.o.Instance {
				// Expired: the member vanished without letting go. Its
				// leases expire about now too; whoever takes its streams
				// over counts a failover.
				for fk, owners := range n.owners {
					if o, ok := owners[inst]; ok {
						n.lost[fk] = o
					}
				}
			}
			if had {
				n.wake()
			}
			return
		}
		var m member
		if err := json.Unmarshal(e.Value(), &m); err != nil {
			return
		}
		m.Instance = inst
		n.members[inst] = m
		if !had || old.Draining != m.Draining {
			n.wake()
		}
		if m.Replicas != 0 && m.Replicas != n.o.Replicas {
			if ok, _ := n.warn.Allow("replicas " + inst); ok {
				n.log.Warn("a member runs with another replica count: streams will move back and forth; give every member the same value",
					"member", inst, "its_replicas", m.Replicas, "replicas", n.o.Replicas)
			}
		}
	default:
		fk, inst, ok := parseOwnerKey(key)
		if !ok {
			return
		}
		owners := n.owners[fk]
		old, had := owners[inst]
		if removed {
			if !had {
				return
			}
			delete(owners, inst)
			if len(owners) == 0 {
				delete(n.owners, fk)
			}
			if e.Operation() == jetstream.KeyValuePurge && inst != n.o.Instance {
				// Expired, not let go: its owner vanished.
				n.lost[fk] = old
			}
			n.wake()
			return
		}
		var l lease
		if err := json.Unmarshal(e.Value(), &l); err != nil {
			return
		}
		l.Instance = inst
		if owners == nil {
			owners = map[string]ownerView{}
			n.owners[fk] = owners
		}
		owners[inst] = ownerView{lease: l, renewed: e.Created()}
		if !had || old.State != l.State {
			n.wake()
		}
	}
}

// sleep waits d or until ctx is done, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (n *Node) setKVErr(err error) {
	n.mu.Lock()
	n.kvErr = err
	n.mu.Unlock()
	if err != nil {
		n.m.ClusterKVReady.Set(0)
	}
}

// opTimeout bounds one KV operation: well within a renewal period.
func (n *Node) opTimeout() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return min(n.ttl/4, 2*time.Second)
}

// count records a KV operation's outcome in metrics.
func (n *Node) count(op string, err error) {
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyNotFound):
		outcome = "conflict"
	default:
		outcome = "error"
	}
	n.m.ClusterKVOps.WithLabelValues(op, outcome).Inc()
}
