package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
)

// Owners returns the members that would own key on their own: the replicas
// members with the highest rendezvous score for it, best first. Assign
// starts from this order and bounds each member's load.
func Owners(key string, members []string, replicas int) []string {
	ranked := rank(key, members)
	return ranked[:min(replicas, len(ranked))]
}

// rank orders members by their rendezvous score for key, best first.
func rank(key string, members []string) []string {
	type scored struct {
		inst  string
		score uint64
	}
	list := make([]scored, len(members))
	for i, m := range members {
		list[i] = scored{m, score(m, key)}
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].score != list[j].score {
			return list[i].score > list[j].score
		}
		return list[i].inst < list[j].inst
	})
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.inst
	}
	return out
}

// Assign gives each key its owners among members: replicas of them (all
// when there are fewer). Owners are chosen one replica at a time over every
// key (in key order): each key gets its best-ranked member (see Owners) that
// does not own it yet and is below its share of the replicas given so far,
// the share differing by at most one between members. So loads are even
// (none idle while another has more than one above it), and a member joining
// or leaving moves little more than its own share. Every process computes
// the same answer from the same keys and members.
func Assign(keys []string, members []string, replicas int) map[string][]string {
	out := make(map[string][]string, len(keys))
	if len(members) == 0 {
		return out
	}
	replicas = min(replicas, len(members))
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	ranked := make(map[string][]string, len(sorted))
	for _, key := range sorted {
		ranked[key] = rank(key, members)
	}
	load := make(map[string]int, len(members))
	for r := 1; r <= replicas; r++ {
		total := len(sorted) * r
		floor, extra := total/len(members), total%len(members)
		atCeil := 0
		for _, m := range members {
			if load[m] > floor {
				atCeil++
			}
		}
		for _, key := range sorted {
			owners := out[key]
			pick := ""
			for _, m := range ranked[key] {
				if slices.Contains(owners, m) {
					continue
				}
				if load[m] < floor || (load[m] == floor && atCeil < extra) {
					pick = m
					break
				}
			}
			if pick == "" { // the room left is on members that own it already
				for _, m := range ranked[key] {
					if !slices.Contains(owners, m) && (pick == "" || load[m] < load[pick]) {
						pick = m
					}
				}
			}
			if load[pick] == floor {
				atCeil++
			}
			load[pick]++
			out[key] = append(owners, pick)
		}
	}
	even(sorted, members, out, load)
	return out
}

// even moves owners from the most loaded member to the least loaded until
// they are at most one apart: with several replicas, the last keys of a pass
// may have room only on members that own them already. A member with more
// keys than another always owns one that the other does not.
func even(keys, members []string, out map[string][]string, load map[string]int) {
	byLoad := slices.Clone(members)
	for {
		slices.SortFunc(byLoad, func(a, b string) int {
			if load[a] != load[b] {
				return load[a] - load[b]
			}
			return strings.Compare(a, b)
		})
		lo, hi := byLoad[0], byLoad[len(byLoad)-1]
		if load[hi]-load[lo] <= 1 {
			return
		}
		for _, key := range keys {
			owners := out[key]
			if i := slices.Index(owners, hi); i >= 0 && !slices.Contains(owners, lo) {
				owners[i] = lo
				load[hi]--
				load[lo]++
				break
			}
		}
	}
}

// score hashes a member and a key (FNV-1a, then a 64-bit finalizer to spread
// close inputs).
func score(member, key string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(member))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(key))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// turned ends a turn of the loop: whoever waits on the last one wakes.
func (n *Node) turned() {
	n.mu.Lock()
	close(n.turn)
	n.turn = make(chan struct{})
	n.mu.Unlock()
}

// Drain hands this process's streams over to the other members
// (make-before-break: each stream is stopped once its new owners are
// connected) and returns once none is left, or with an error saying how many
// are left when ctx ends first or no other member can take them. Run keeps
// going: cancel its ctx afterwards.
func (n *Node) Drain(ctx context.Context) error {
	n.drainOnce.Do(func() { close(n.drain) })
	for {
		n.mu.Lock()
		left, others, turn := len(n.held), 0, n.turn
		for inst, m := range n.members {
			if inst != n.o.Instance && !m.Draining {
				others++
			}
		}
		n.mu.Unlock()
		select {
		case <-n.done:
			return nil
		default:
		}
		switch {
		case left == 0:
			return nil
		case others == 0:
			return fmt.Errorf("no other member to hand %d streams to", left)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d streams not handed over in time: %w", left, ctx.Err())
		case <-turn:
		}
	}
}

func (n *Node) kvFollowed() jetstream.KeyValue {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.followedKV
}

// apiTimeout bounds the KV operations of an admin call.
const apiTimeout = 5 * time.Second

// Follow adds a fixture or venue to the cluster's followed set, for the admin
// API; every member sees it, and its owners start it. It reports whether it
// was added (false: already there). It refuses an invalid ID
// (fixtures.ErrInvalidID), an ID past MaxFollowed (fixtures.ErrTooManyStreams)
// and, when KV cannot be reached, wraps ErrUnavailable.
func (n *Node) Follow(kind access.Kind, id string) (bool, error) {
	if err := checkID(kind, id); err != nil {
		return false, err
	}
	key := FollowedKey(kind, id)
	if _, err := n.room(key); err != nil {
		return false, err
	}
	kv := n.kvFollowed()
	if kv == nil {
		return false, fmt.Errorf("%w: not connected to the buckets yet", ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	_, err := kv.Create(ctx, key, n.followedValue(fixtures.SourceAdmin))
	n.count("create", err)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		return false, nil
	}
	return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// Unfollow removes a fixture or venue from the cluster's followed set, for
// the admin API; its owners stop it, and discovery does not add it again. It
// reports whether it was in the set.
func (n *Node) Unfollow(kind access.Kind, id string) (bool, error) {
	if err := checkID(kind, id); err != nil {
		return false, nil // never followed
	}
	kv := n.kvFollowed()
	if kv == nil {
		return false, fmt.Errorf("%w: not connected to the buckets yet", ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	key := FollowedKey(kind, id)
	_, err := kv.Get(ctx, key)
	n.count("get", err)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	err = kv.Delete(ctx, key)
	n.count("delete", err)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return true, nil
}

// room reports whether key is in the followed set and, when it is not,
// refuses it at MaxFollowed (fixtures.ErrTooManyStreams).
func (n *Node) room(key string) (have bool, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, have = n.followed[key]
	if !have && len(n.followed) >= n.o.MaxFollowed {
		return false, fmt.Errorf("%w: the cluster's followed set holds %d IDs, the most its limit allows; unfollow one first", fixtures.ErrTooManyStreams, len(n.followed))
	}
	return have, nil
}

func checkID(kind access.Kind, id string) error {
	if kind != access.Fixture && kind != access.Venue {
		return fixtures.ErrInvalidKind
	}
	return fixtures.ValidateID(id)
}

// FollowFrom adds an ID to the followed set on behalf of source unless its
// key exists or was deleted (an admin DELETE sticks), for discovery
// (discovery.Follower). It reports whether it was added.
func (n *Node) FollowFrom(kind access.Kind, id string, source fixtures.Source) (bool, error) {
	if err := checkID(kind, id); err != nil {
		return false, err
	}
	if have, err := n.room(FollowedKey(kind, id)); have || err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	return n.addIfNew(ctx, ID{kind, id}, source)
}

// StopAfterFinal removes a followed fixture from the set Options.StopAfterFinal
// after a final status seen in a listing (discovery.Follower). It reports
// whether it will.
func (n *Node) StopAfterFinal(id, status string) bool {
	if n.o.StopAfterFinal <= 0 {
		return false
	}
	key := FollowedKey(access.Fixture, id)
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.followed[key]; !ok {
		return false
	}
	if _, ok := n.finals[key]; !ok {
		n.log.Info("fixture status is final in the listing; it leaves the followed set later", "id", id, "status", status, "after", n.o.StopAfterFinal.String())
		n.finals[key] = time.AfterFunc(n.o.StopAfterFinal, func() { n.Finished(access.Fixture, id) })
	}
	return true
}

// Status is a snapshot of the cluster as this process sees it, for GET /v1/cluster.
type Status struct {
	Cluster  string `json:"cluster"`
	Instance string `json:"instance"`
	Replicas int    `json:"replicas"`
	LeaseTTL string `json:"leaseTTL"`
	// Member is whether this process holds its membership (it may own streams).
	Member   bool             `json:"member"`
	Draining bool             `json:"draining"`
	Error    string           `json:"error,omitempty"`
	Leader   string           `json:"discoveryLeader,omitempty"`
	Members  []MemberStatus   `json:"members"`
	Followed []FollowedStatus `json:"followed"`
}

// MemberStatus is one live member.
type MemberStatus struct {
	Instance  string    `json:"instance"`
	StartedAt time.Time `json:"startedAt"`
	HTTP      string    `json:"http,omitempty"`
	Draining  bool      `json:"draining"`
	Leases    int       `json:"leases"`
}

// FollowedStatus is one followed ID: who should own it and who does.
type FollowedStatus struct {
	Kind     access.Kind     `json:"kind"`
	ID       string          `json:"id"`
	Source   fixtures.Source `json:"source"`
	Assigned []string        `json:"assigned"`
	Owners   []OwnerStatus   `json:"owners"`
}

// OwnerStatus is one lease on a followed ID.
type OwnerStatus struct {
	Instance  string         `json:"instance"`
	State     fixtures.State `json:"state"`
	Since     time.Time      `json:"since"`
	RenewedAt time.Time      `json:"renewedAt"`
}

// Status returns a snapshot of the members and, per followed ID, its
// assigned owners and the leases held on it.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := Status{
		Cluster: n.o.Cluster, Instance: n.o.Instance, Replicas: n.o.Replicas, LeaseTTL: n.ttl.String(),
		Member: n.joined && !n.fenced, Draining: n.draining, Leader: n.leader,
		Members: []MemberStatus{}, Followed: []FollowedStatus{},
	}
	if n.kvErr != nil {
		st.Error = n.kvErr.Error()
	}
	leases := map[string]int{}
	for _, owners := range n.owners {
		for inst := range owners {
			leases[inst]++
		}
	}
	for inst, m := range n.members {
		st.Members = append(st.Members, MemberStatus{Instance: inst, StartedAt: m.StartedAt, HTTP: m.HTTP, Draining: m.Draining, Leases: leases[inst]})
	}
	assigned := n.assignment()
	sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].Instance < st.Members[j].Instance })
	for key, f := range n.followed {
		fs := FollowedStatus{Kind: f.id.Kind, ID: f.id.ID, Source: f.source, Assigned: assigned[key], Owners: []OwnerStatus{}}
		for inst, o := range n.owners[key] {
			fs.Owners = append(fs.Owners, OwnerStatus{Instance: inst, State: o.State, Since: o.Since, RenewedAt: o.renewed})
		}
		sort.Slice(fs.Owners, func(i, j int) bool { return fs.Owners[i].Instance < fs.Owners[j].Instance })
		st.Followed = append(st.Followed, fs)
	}
	sort.Slice(st.Followed, func(i, j int) bool {
		if st.Followed[i].Kind != st.Followed[j].Kind {
			return st.Followed[i].Kind < st.Followed[j].Kind
		}
		return st.Followed[i].ID < st.Followed[j].ID
	})
	return st
}

// Leader is the member that holds the discovery leadership, or "".
func (n *Node) Leader() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leader
}

// Ready returns nil while this process holds its membership in KV, else why not.
func (n *Node) Ready() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.fenced:
		return fmt.Errorf("cluster: streams stopped, membership not renewed in JetStream KV: %v", n.kvErr)
	case !n.joined:
		return fmt.Errorf("cluster: not a member yet: %v", n.kvErr)
	case n.kvErr != nil && time.Since(n.lastRenewOK) > n.ttl/2:
		return fmt.Errorf("cluster: JetStream KV: %v", n.kvErr)
	}
	return nil
}

// stopFinals stops the timers that would remove finished fixtures.
func (n *Node) stopFinals() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, t := range n.finals {
		t.Stop()
		delete(n.finals, k)
	}
}
