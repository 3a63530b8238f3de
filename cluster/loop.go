package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/datacore-bridge/datacore-bridge/fixtures"
)

// leaseWorkers bounds the lease renewals in flight at once.
const leaseWorkers = 8

// loopState is what only the loop goroutine reads and writes.
type loopState struct {
	memberRev    uint64
	leaderRev    uint64
	leaderCancel context.CancelFunc
	leaderDone   chan struct{}
	seeded       bool
	nextRenew    time.Time
}

// loop makes every decision of this process: renewing, fencing, taking and
// letting go of streams, and the discovery leadership. It returns when ctx
// is done.
func (n *Node) loop(ctx context.Context) {
	var ls loopState
	// The timer wakes the loop for the next renewal, and at least every
	// half period to check the fence and the settle time.
	tick := time.NewTimer(0)
	defer tick.Stop()
	drain := n.drain
	for {
		select {
		case <-ctx.Done():
			n.stopLeading(&ls, false)
			return
		case <-n.kick:
		case <-tick.C:
		case <-drain:
			drain = nil
			n.mu.Lock()
			n.draining = true
			n.mu.Unlock()
			n.log.Info("draining: handing this process's streams over to the other members")
			n.stopLeading(&ls, true)
			ls.nextRenew = time.Time{} // tell the others now
		}
		now := time.Now()
		if !now.Before(ls.nextRenew) {
			wait := n.period()
			if !n.renew(ctx, &ls) {
				wait = n.period() / 3 // retry soon, before the fence
			}
			ls.nextRenew = now.Add(wait)
		}
		n.checkFence(now, &ls)
		n.removeFinished(ctx)
		if n.settled(now) {
			if !ls.seeded {
				ls.seeded = n.seed(ctx)
			}
			n.reconcile(ctx, now)
		}
		n.lead(ctx, &ls)
		n.setGauges()
		n.turned()
		wait := min(time.Until(ls.nextRenew), n.period()/2)
		tick.Stop()
		tick.Reset(max(wait, time.Millisecond))
	}
}

// period is the time between renewals: a third of the TTL.
func (n *Node) period() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ttl / 3
}

// settled reports whether the node may take streams: it is a member, sees
// the whole view, is not fenced, and joined at least Settle ago.
func (n *Node) settled(now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.joined && !n.fenced && n.followedInit && n.leasesInit && now.Sub(n.joinedAt) >= n.o.Settle
}

// memberValue is this process's member key value.
func (n *Node) memberValue() []byte {
	n.mu.Lock()
	draining := n.draining
	n.mu.Unlock()
	b, _ := json.Marshal(member{Instance: n.o.Instance, StartedAt: n.startedAt, HTTP: n.o.HTTPAddr, Replicas: n.o.Replicas,
		Draining: draining, Incarnation: n.incarnation})
	return b
}

// ownMember returns the revision of the member key when it holds this
// Node's own value: a write whose answer was lost (NATS went away) still
// happened, and its revision is the one to renew.
func (n *Node) ownMember(ctx context.Context) (uint64, bool) {
	e, err := n.leasesKV.Get(ctx, memberKey(n.o.Instance))
	n.count("get", err)
	if err != nil {
		return 0, false
	}
	var m member
	if json.Unmarshal(e.Value(), &m) != nil || m.Incarnation != n.incarnation {
		return 0, false
	}
	return e.Revision(), true
}

// renew renews the membership (or joins), then every lease and the
// leadership. It reports whether the membership was renewed.
func (n *Node) renew(ctx context.Context, ls *loopState) bool {
	start := time.Now()
	kv := n.leasesKV
	octx, cancel := context.WithTimeout(ctx, n.opTimeout())
	defer cancel()
	n.mu.Lock()
	joined := n.joined
	n.mu.Unlock()
	if !joined {
		rev, err := kv.Create(octx, memberKey(n.o.Instance), n.memberValue())
		n.count("create", err)
		if errors.Is(err, jetstream.ErrKeyExists) {
			if own, ok := n.ownMember(octx); ok {
				rev, err = kv.Update(octx, memberKey(n.o.Instance), n.memberValue(), own)
				n.count("update", err)
			}
		}
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyExists) {
				err = fmt.Errorf("member key %s exists: another live process has the instance name %s, or this one restarted within the lease TTL; waiting for it to expire", memberKey(n.o.Instance), n.o.Instance)
			}
			n.kvFailed("join", err)
			return false
		}
		ls.memberRev = rev
		n.mu.Lock()
		n.joined, n.fenced, n.kvErr, n.lastRenewOK = true, false, nil, start
		if n.joinedAt.IsZero() {
			n.joinedAt = start
		}
		n.mu.Unlock()
		n.m.ClusterKVReady.Set(1)
		n.log.Info("joined the cluster", "replicas", n.o.Replicas, "lease_ttl", n.ttlNow().String())
	} else {
		rev, err := kv.Update(octx, memberKey(n.o.Instance), n.memberValue(), ls.memberRev)
		n.count("update", err)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			if own, ok := n.ownMember(octx); ok {
				rev, err = kv.Update(octx, memberKey(n.o.Instance), n.memberValue(), own)
				n.count("update", err)
			}
		}
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) {
			// The key expired (this process could not renew it in time) or
			// was deleted: the others no longer count on this process.
			n.fence(fmt.Errorf("membership lost: %w", err), ls)
			n.mu.Lock()
			n.joined = false
			n.mu.Unlock()
			return false
		}
		if err != nil {
			n.kvFailed("renew", err)
			return false
		}
		ls.memberRev = rev
		n.mu.Lock()
		wasFenced := n.fenced
		n.fenced, n.kvErr, n.lastRenewOK = false, nil, start
		n.mu.Unlock()
		n.m.ClusterKVReady.Set(1)
		if wasFenced {
			n.log.Info("cluster KV reachable again: taking streams again")
		}
	}
	n.renewLeases(ctx)
	n.renewLeader(ctx, ls)
	return true
}

// kvFailed records a failed membership operation, logged once a minute.
func (n *Node) kvFailed(what string, err error) {
	n.setKVErr(err)
	if ok, suppressed := n.warn.Allow("kv " + what); ok {
		n.log.Warn("cannot renew this process's cluster membership; streams stop if it lasts most of the lease TTL: check the NATS connection and JetStream",
			"op", what, "err", err, "suppressed", suppressed)
	}
}

func (n *Node) ttlNow() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ttl
}

// checkFence stops every stream when the membership has not been renewed
// for three quarters of the TTL: before it can expire and another member
// take the streams over.
func (n *Node) checkFence(now time.Time, ls *loopState) {
	n.mu.Lock()
	due := n.joined && !n.fenced && now.Sub(n.lastRenewOK) > n.ttl*3/4
	err := n.kvErr
	n.mu.Unlock()
	if due {
		n.fence(fmt.Errorf("membership not renewed for three quarters of the lease TTL: %w", err), ls)
	}
}

// fence stops every stream of this process without touching KV (it may be
// unreachable): their leases expire, and other members take them.
func (n *Node) fence(why error, ls *loopState) {
	n.stopLeading(ls, false)
	n.mu.Lock()
	list := make([]*held, 0, len(n.held))
	for _, h := range n.held {
		list = append(list, h)
	}
	clear(n.held)
	n.fenced = true
	n.kvErr = why
	n.mu.Unlock()
	n.m.ClusterKVReady.Set(0)
	for _, h := range list {
		n.o.Local.Unfollow(h.id.Kind, h.id.ID)
	}
	n.m.ClusterHandovers.WithLabelValues("lost").Add(float64(len(list)))
	n.log.Warn("stopped every stream so that other members can take them: this process cannot keep its cluster membership",
		"streams", len(list), "err", why)
}

// writeLease creates or renews h's owner key with the stream's state.
func (n *Node) writeLease(ctx context.Context, h *held, state fixtures.State) (uint64, error) {
	kv := n.leasesKV
	ctx, cancel := context.WithTimeout(ctx, n.opTimeout())
	defer cancel()
	key := ownerKey(h.id, n.o.Instance)
	val, _ := json.Marshal(lease{Instance: n.o.Instance, State: state, Since: h.since, Source: h.source})
	if h.rev != 0 {
		rev, err := kv.Update(ctx, key, val, h.rev)
		n.count("update", err)
		if err == nil || !(errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound)) {
			return rev, err
		}
	}
	rev, err := kv.Create(ctx, key, val)
	n.count("create", err)
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return rev, err
	}
	// Left by this instance's earlier life: take it over.
	e, err := kv.Get(ctx, key)
	n.count("get", err)
	if err != nil {
		return 0, err
	}
	rev, err = kv.Update(ctx, key, val, e.Revision())
	n.count("update", err)
	return rev, err
}

// heldNow returns the streams held and their local states. It calls Local
// without n.mu: the supervisor's hooks run under its locks.
func (n *Node) heldNow() ([]*held, map[string]fixtures.State) {
	n.mu.Lock()
	list := make([]*held, 0, len(n.held))
	for _, h := range n.held {
		list = append(list, h)
	}
	n.mu.Unlock()
	states := make(map[string]fixtures.State, len(list))
	for _, h := range list {
		if s, ok := n.o.Local.State(h.id.Kind, h.id.ID); ok {
			states[h.id.key()] = s
		} else {
			states[h.id.key()] = fixtures.StateStarting
		}
	}
	return list, states
}

// renewLeases renews every lease held, a few at a time.
func (n *Node) renewLeases(ctx context.Context) {
	list, byKey := n.heldNow()
	states := make([]fixtures.State, len(list))
	for i, h := range list {
		states[i] = byKey[h.id.key()]
	}
	revs := make([]uint64, len(list))
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	sem := make(chan struct{}, leaseWorkers)
	for i, h := range list {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			revs[i], errs[i] = n.writeLease(ctx, h, states[i])
		}()
	}
	wg.Wait()
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, h := range list {
		if errs[i] != nil {
			continue // the fence covers a KV that stays away
		}
		h.rev, h.written = revs[i], states[i]
	}
}

// take is a stream this process should start owning.
type take struct {
	entry    followedEntry
	lostFrom string
	lostAt   time.Time
	gap      bool // no other owner was connected: a failover the stream was without
}

// release is a stream this process should let go of.
type release struct {
	h      *held
	reason string // rebalance, drain, or "" when unfollowed
	to     []string
}

// reconcile compares what this process owns with what rendezvous hashing
// over the live members gives it, starts what it should own, and lets go of
// what another member now owns once that member is connected
// (make-before-break).
func (n *Node) reconcile(ctx context.Context, now time.Time) {
	_, states := n.heldNow()
	takes, releases, dirty := n.plan(now, states)
	for _, t := range takes {
		id := t.entry.id
		if _, err := n.o.Local.FollowFrom(id.Kind, id.ID, t.entry.source); err != nil {
			if ok, suppressed := n.warn.Allow("take " + err.Error()); ok {
				n.log.Warn("cannot start a stream this process owns", "kind", string(id.Kind), "id", id.ID, "err", err, "suppressed", suppressed)
			}
			continue
		}
		h := &held{id: id, source: t.entry.source, since: now}
		if t.gap {
			h.lostAt, h.lostFrom = t.lostAt, t.lostFrom
		}
		if t.lostFrom != "" {
			n.m.ClusterHandovers.WithLabelValues("failover").Inc()
			n.log.Info("taking over a stream from a member that vanished", "kind", string(id.Kind), "id", id.ID, "from", t.lostFrom)
		}
		n.mu.Lock()
		n.held[id.key()] = h
		n.mu.Unlock()
		dirty = append(dirty, h)
		states[id.key()] = fixtures.StateStarting
	}
	for _, r := range releases {
		n.letGo(ctx, r)
	}
	for _, h := range dirty {
		state := states[h.id.key()]
		rev, err := n.writeLease(ctx, h, state)
		n.mu.Lock()
		if err == nil {
			h.rev, h.written = rev, state
		}
		n.mu.Unlock()
	}
	n.tookOver(states)
}

// tookOver records, for each stream taken over from a vanished member that
// is now connected here, how long it was without an owner. It looks at every
// stream held, not only those whose lease changed: a renewal may have written
// the connected state first.
func (n *Node) tookOver(states map[string]fixtures.State) {
	type done struct {
		h    *held
		from string
		d    time.Duration
	}
	var list []done
	n.mu.Lock()
	for key, h := range n.held {
		if !h.lostAt.IsZero() && states[key] == fixtures.StateConnected {
			list = append(list, done{h, h.lostFrom, time.Since(h.lostAt)})
			h.lostAt = time.Time{}
		}
	}
	n.mu.Unlock()
	for _, x := range list {
		n.m.ClusterFailover.Observe(x.d.Seconds())
		n.log.Info("took over a stream", "kind", string(x.h.id.Kind), "id", x.h.id.ID, "from", x.from, "failover", x.d.Round(time.Millisecond).String())
	}
}

// assignment is the owners of every followed key among the live members
// that are not draining: this process included while it is a member, even
// before its watcher shows it. n.mu is held.
func (n *Node) assignment() map[string][]string {
	active := make([]string, 0, len(n.members)+1)
	for inst, m := range n.members {
		if !m.Draining && inst != n.o.Instance {
			active = append(active, inst)
		}
	}
	if n.joined && !n.draining {
		active = append(active, n.o.Instance)
	}
	keys := make([]string, 0, len(n.followed))
	for key := range n.followed {
		keys = append(keys, key)
	}
	return Assign(keys, active, n.o.Replicas)
}

// plan decides, under n.mu, what reconcile does.
func (n *Node) plan(now time.Time, states map[string]fixtures.State) (takes []take, releases []release, dirty []*held) {
	n.mu.Lock()
	defer n.mu.Unlock()
	assigned := n.assignment()
	for key, f := range n.followed {
		want := assigned[key]
		mine := slices.Contains(want, n.o.Instance)
		h := n.held[key]
		switch {
		case mine && h == nil:
			t := take{entry: f}
			if lv, ok := n.lost[key]; ok && now.Sub(lv.renewed) < 3*n.ttl {
				t.lostFrom, t.lostAt, t.gap = lv.Instance, lv.renewed, !n.connectedElsewhere(key)
				delete(n.lost, key)
			}
			takes = append(takes, t)
		case !mine && h != nil && n.handedOver(key, want):
			reason := "rebalance"
			if n.draining {
				reason = "drain"
			}
			releases = append(releases, release{h: h, reason: reason, to: want})
		case h != nil && h.written != states[key]:
			dirty = append(dirty, h)
		}
	}
	for key, h := range n.held {
		if _, ok := n.followed[key]; !ok {
			releases = append(releases, release{h: h})
		}
	}
	for key, lv := range n.lost {
		if now.Sub(lv.renewed) >= 3*n.ttl {
			delete(n.lost, key)
		}
	}
	return takes, releases, dirty
}

// handedOver reports whether every member in want has a connected lease on
// key, so that this process may let go. n.mu is held.
func (n *Node) handedOver(key string, want []string) bool {
	if len(want) == 0 {
		return false // nobody to hand it to: keep it
	}
	owners := n.owners[key]
	for _, inst := range want {
		if owners[inst].State != fixtures.StateConnected {
			return false
		}
	}
	return true
}

// connectedElsewhere reports whether another live member has key connected. n.mu is held.
func (n *Node) connectedElsewhere(key string) bool {
	for inst, o := range n.owners[key] {
		if _, live := n.members[inst]; live && inst != n.o.Instance && o.State == fixtures.StateConnected {
			return true
		}
	}
	return false
}

// letGo stops a stream and deletes its lease.
func (n *Node) letGo(ctx context.Context, r release) {
	id := r.h.id
	n.o.Local.Unfollow(id.Kind, id.ID)
	octx, cancel := context.WithTimeout(ctx, n.opTimeout())
	err := n.leasesKV.Delete(octx, ownerKey(id, n.o.Instance))
	cancel()
	n.count("delete", err)
	if r.reason == "" {
		n.log.Info("stream no longer followed by the cluster: stopped", "kind", string(id.Kind), "id", id.ID)
	} else {
		n.m.ClusterHandovers.WithLabelValues(r.reason).Inc()
		n.log.Info("handed a stream over", "kind", string(id.Kind), "id", id.ID, "to", r.to, "reason", r.reason)
	}
	// Last: Drain returns once nothing is held, and finds it all done.
	n.mu.Lock()
	delete(n.held, id.key())
	n.mu.Unlock()
}

// seed adds the configured IDs to the followed set, unless present or
// deleted; it reports whether every one was settled.
func (n *Node) seed(ctx context.Context) bool {
	if len(n.o.Seed) == 0 {
		return true
	}
	var added, kept, failed int
	for _, s := range n.o.Seed {
		ok, err := n.addIfNew(ctx, s.ID, s.Source)
		switch {
		case err != nil:
			failed++
		case ok:
			added++
		default:
			kept++
		}
	}
	if failed > 0 {
		return false
	}
	n.log.Info("configured IDs added to the cluster's followed set", "added", added,
		"already_present_or_removed", kept, "bucket", FollowedBucket(n.o.Cluster))
	return true
}

// addIfNew adds id to the followed set unless its key exists or was deleted.
func (n *Node) addIfNew(ctx context.Context, id ID, source fixtures.Source) (bool, error) {
	kv := n.kvFollowed()
	if kv == nil {
		return false, ErrUnavailable
	}
	ctx, cancel := context.WithTimeout(ctx, n.opTimeout())
	defer cancel()
	// Revision 0: only if the key has no entry at all, not even a delete
	// marker, so that a removal sticks.
	_, err := kv.Update(ctx, id.key(), n.followedValue(source), 0)
	n.count("update", err)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyExists):
		return false, nil
	}
	return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
}

func (n *Node) followedValue(source fixtures.Source) []byte {
	b, _ := json.Marshal(followedValue{Source: source, AddedAt: time.Now().UTC().Truncate(time.Millisecond), AddedBy: n.o.Instance})
	return b
}

// removeFinished deletes finished fixtures from the followed set.
func (n *Node) removeFinished(ctx context.Context) {
	n.mu.Lock()
	list := make([]ID, 0, len(n.removals))
	for _, id := range n.removals {
		list = append(list, id)
	}
	kv := n.followedKV
	n.mu.Unlock()
	if kv == nil {
		return
	}
	for _, id := range list {
		octx, cancel := context.WithTimeout(ctx, n.opTimeout())
		err := kv.Delete(octx, id.key())
		cancel()
		n.count("delete", err)
		if err != nil {
			continue // tried again at the next turn
		}
		n.mu.Lock()
		delete(n.removals, id.key())
		n.mu.Unlock()
		n.log.Info("finished fixture removed from the cluster's followed set", "id", id.ID)
	}
}

// lead takes the discovery leadership when nobody holds it, and gives it up
// when this process may not hold it.
func (n *Node) lead(ctx context.Context, ls *loopState) {
	if n.o.Leader == nil {
		return
	}
	n.mu.Lock()
	may := n.joined && !n.fenced && !n.draining
	free := n.leader == ""
	leading, draining := n.leading, n.draining
	n.mu.Unlock()
	switch {
	case leading && !may:
		n.stopLeading(ls, draining)
	case !leading && may && free:
		octx, cancel := context.WithTimeout(ctx, n.opTimeout())
		rev, err := n.leasesKV.Create(octx, leaderKey, []byte(n.leaderValue()))
		cancel()
		n.count("create", err)
		if err != nil {
			return
		}
		ls.leaderRev = rev
		lctx, stop := context.WithCancel(ctx)
		ls.leaderCancel, ls.leaderDone = stop, make(chan struct{})
		n.mu.Lock()
		n.leading = true
		n.mu.Unlock()
		n.m.ClusterLeader.Set(1)
		n.log.Info("this process now lists the organizations' fixtures for the cluster")
		done := ls.leaderDone
		go func() {
			defer close(done)
			n.o.Leader(lctx)
		}()
	}
}

// renewLeader renews the leadership; a lost one is given up.
func (n *Node) renewLeader(ctx context.Context, ls *loopState) {
	if ls.leaderCancel == nil {
		return
	}
	octx, cancel := context.WithTimeout(ctx, n.opTimeout())
	rev, err := n.leasesKV.Update(octx, leaderKey, []byte(n.leaderValue()), ls.leaderRev)
	cancel()
	n.count("update", err)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		// A renewal whose answer was lost still happened: the key may be ours.
		octx, cancel := context.WithTimeout(ctx, n.opTimeout())
		if e, gerr := n.leasesKV.Get(octx, leaderKey); gerr == nil && string(e.Value()) == n.leaderValue() {
			rev, err = n.leasesKV.Update(octx, leaderKey, []byte(n.leaderValue()), e.Revision())
		}
		cancel()
	}
	switch {
	case err == nil:
		ls.leaderRev = rev
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyNotFound):
		n.stopLeading(ls, false)
	}
}

// leaderValue is the leader key's value: the instance, and the
// incarnation after a space (see member.Incarnation).
func (n *Node) leaderValue() string { return n.o.Instance + " " + n.incarnation }

// stopLeading ends the leadership, deleting the key when release is set so
// that another member takes it at once.
func (n *Node) stopLeading(ls *loopState, release bool) {
	if ls.leaderCancel == nil {
		return
	}
	ls.leaderCancel()
	<-ls.leaderDone
	ls.leaderCancel, ls.leaderDone = nil, nil
	n.mu.Lock()
	n.leading = false
	n.mu.Unlock()
	n.m.ClusterLeader.Set(0)
	if release {
		ctx, cancel := context.WithTimeout(context.Background(), n.opTimeout())
		err := n.leasesKV.Delete(ctx, leaderKey, jetstream.LastRevision(ls.leaderRev))
		cancel()
		n.count("delete", err)
	}
	n.log.Info("this process no longer lists the organizations' fixtures")
}

// leave lets go of everything when Run ends: the streams (the supervisor is
// stopping them too), the leases and the membership, so that the others
// take over at once rather than after the TTL.
func (n *Node) leave() {
	n.stopFinals()
	n.mu.Lock()
	list := make([]*held, 0, len(n.held))
	for _, h := range n.held {
		list = append(list, h)
	}
	clear(n.held)
	joined := n.joined
	n.joined = false
	kv := n.leasesKV
	n.mu.Unlock()
	for _, h := range list {
		n.o.Local.Unfollow(h.id.Kind, h.id.ID)
	}
	n.setGauges()
	if kv == nil || !joined {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, h := range list {
		err := kv.Delete(ctx, ownerKey(h.id, n.o.Instance))
		n.count("delete", err)
	}
	err := kv.Delete(ctx, memberKey(n.o.Instance))
	n.count("delete", err)
	n.log.Info("left the cluster", "streams_let_go", len(list))
}

// setGauges sets the member and lease gauges.
func (n *Node) setGauges() {
	n.mu.Lock()
	members, held := len(n.members), len(n.held)
	if _, ok := n.members[n.o.Instance]; !ok && n.joined {
		members++
	}
	n.mu.Unlock()
	n.m.ClusterMembers.Set(float64(members))
	n.m.ClusterLeases.Set(float64(held))
}
