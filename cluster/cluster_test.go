package cluster

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/metrics"
)

const testTTL = 2 * time.Second

// assignedTo waits until every ID runs exactly on the members rendezvous
// hashing assigns it among live, and nowhere else.
func assignedTo(t *testing.T, list []ID, replicas int, live []*testMember, timeout time.Duration) {
	t.Helper()
	names := make([]string, len(live))
	for i, m := range live {
		names[i] = m.name
	}
	keys := make([]string, len(list))
	for i, id := range list {
		keys[i] = id.key()
	}
	assigned := Assign(keys, names, replicas)
	var why string
	ok := poll.Until(context.Background(), timeout, "assignment", func() bool {
		for _, m := range live {
			running := m.local.running()
			for _, id := range list {
				want := slices.Contains(assigned[id.key()], m.name)
				if running[id] != want {
					why = fmt.Sprintf("%s on %s: running %v, assigned %v", id.ID, m.name, running[id], want)
					return false
				}
			}
			if len(running) > len(list) {
				why = fmt.Sprintf("%s runs %d streams, more than the %d followed", m.name, len(running), len(list))
				return false
			}
		}
		return true
	})
	if ok != nil {
		t.Fatalf("%v: %s", ok, why)
	}
}

// owned counts, per ID, the members running it now.
func owned(members ...*testMember) map[ID]int {
	out := map[ID]int{}
	for _, m := range members {
		for id := range m.local.running() {
			out[id]++
		}
	}
	return out
}

// covered reports, for an ID, the first moment after its first start at which
// no member ran it, or the zero time if it was always running since.
func uncovered(id ID, members ...*testMember) time.Time {
	type ev struct {
		event
		member string
	}
	var all []ev
	for _, m := range members {
		for _, e := range m.local.history(id) {
			all = append(all, ev{e, m.name})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
	running := 0
	for i, e := range all {
		if e.started {
			running++
		} else {
			running--
		}
		if running == 0 && i > 0 && i < len(all)-1 {
			return e.at
		}
	}
	return time.Time{}
}

func TestSpreadAndFailover(t *testing.T) {
	c := newTestCluster(t, testTTL)
	list := ids(access.Fixture, 60)
	a := c.start("a", 1, func(o *Options) { o.Seed = seeds(list) })
	b := c.start("b", 1, nil)
	d := c.start("d", 1, nil)
	assignedTo(t, list, 1, []*testMember{a, b, d}, 20*time.Second)

	for _, m := range []*testMember{a, b, d} {
		if n := len(m.local.running()); n != len(list)/3 {
			t.Errorf("%s runs %d of %d streams: not an even spread over 3 members", m.name, n, len(list))
		}
	}
	// Every move while the members joined was make-before-break.
	for _, id := range list {
		if at := uncovered(id, a, b, d); !at.IsZero() {
			t.Errorf("%s was followed by nobody at %s while members joined", id.ID, at.Format(time.StampMicro))
		}
	}

	lost := b.local.running()
	crashed := time.Now()
	b.crash()
	assignedTo(t, list, 1, []*testMember{a, d}, 3*testTTL)
	t.Logf("%d streams of the crashed member taken over %s after the crash (lease TTL %s)", len(lost), time.Since(crashed).Round(time.Millisecond), testTTL)

	failovers := testutil.ToFloat64(a.m.ClusterHandovers.WithLabelValues("failover")) + testutil.ToFloat64(d.m.ClusterHandovers.WithLabelValues("failover"))
	if int(failovers) != len(lost) {
		t.Errorf("handovers_total{reason=failover} = %v, want the %d streams the crashed member ran", failovers, len(lost))
	}
	// Every moved stream was without an owner until taken over: each is
	// observed once, from the lost owner's last renewal, so at most a TTL
	// and the takeover before now.
	poll.Wait(t, testTTL, "every failover observed", func() bool {
		n, _ := failoverSamples(t, a.m)
		m, _ := failoverSamples(t, d.m)
		return n+m == uint64(len(lost))
	})
	for _, m := range []*testMember{a, d} {
		if n, sum := failoverSamples(t, m.m); n > 0 && (sum/float64(n) <= 0 || sum/float64(n) > time.Since(crashed).Seconds()+testTTL.Seconds()) {
			t.Errorf("%s: cluster_failover_seconds mean %.2f s over %d, want within the crash's TTL", m.name, sum/float64(n), n)
		}
	}
	for _, m := range []*testMember{a, d} {
		want := float64(len(m.local.running()))
		poll.Wait(t, testTTL, m.name+"'s gauges", func() bool {
			return testutil.ToFloat64(m.m.ClusterMembers) == 2 && testutil.ToFloat64(m.m.ClusterLeases) == want
		})
	}
}

func TestDrainHandsOverBeforeStopping(t *testing.T) {
	c := newTestCluster(t, testTTL)
	list := ids(access.Fixture, 30)
	a := c.start("a", 1, func(o *Options) { o.Seed = seeds(list) })
	b := c.start("b", 1, nil)
	d := c.start("d", 1, nil)
	all := []*testMember{a, b, d}
	assignedTo(t, list, 1, all, 20*time.Second)
	mine := a.local.running()
	if len(mine) == 0 {
		t.Fatal("a owns nothing to hand over")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.node.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if n := len(a.local.running()); n != 0 {
		t.Fatalf("a still runs %d streams after Drain", n)
	}
	if n := len(owned(b, d)); n != len(list) {
		t.Errorf("%d of %d IDs run after the drain", n, len(list))
	}
	// The rest may move between b and d as the shares change, make-before-break too.
	assignedTo(t, list, 1, []*testMember{b, d}, 10*time.Second)
	for _, id := range list {
		if at := uncovered(id, a, b, d); !at.IsZero() {
			t.Errorf("%s was followed by nobody at %s during the handover", id.ID, at.Format(time.StampMicro))
		}
	}
	if got := testutil.ToFloat64(a.m.ClusterHandovers.WithLabelValues("drain")); int(got) != len(mine) {
		t.Errorf("handovers_total{reason=drain} = %v, want %d (rebalance %v)", got, len(mine), testutil.ToFloat64(a.m.ClusterHandovers.WithLabelValues("rebalance")))
	}

	// Run ending after the drain leaves the cluster at once: the others do
	// not wait for the TTL to see it gone.
	a.stop()
	<-a.done
	poll.Wait(t, testTTL/2, "b to see a leave", func() bool {
		st := b.node.Status()
		return len(st.Members) == 2
	})
}

func TestDrainAloneReturnsAtOnce(t *testing.T) {
	c := newTestCluster(t, testTTL)
	a := c.start("a", 1, func(o *Options) { o.Seed = seeds(ids(access.Fixture, 3)) })
	poll.Wait(t, 10*time.Second, "a to run its 3 streams", func() bool { return len(a.local.running()) == 3 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := a.node.Drain(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Drain with no other member = %v (ctx %v), want an error at once", err, ctx.Err())
	}
}

func TestFencedMemberStopsBeforeOthersTakeOver(t *testing.T) {
	c := newTestCluster(t, testTTL)
	list := ids(access.Fixture, 20)
	a := c.start("a", 1, func(o *Options) { o.Seed = seeds(list) })
	b := c.start("b", 1, nil)
	assignedTo(t, list, 1, []*testMember{a, b}, 20*time.Second)
	mine := a.local.running()

	// a loses NATS but keeps running: it cannot renew, and must stop its
	// streams before its membership expires and b takes them.
	a.nc.Close()
	poll.Wait(t, 2*testTTL, "a to stop every stream", func() bool { return len(a.local.running()) == 0 })
	if err := a.node.Ready(); err == nil {
		t.Error("a is ready while fenced")
	}
	assignedTo(t, list, 1, []*testMember{b}, 3*testTTL)
	for id := range mine {
		ha, hb := a.local.history(id), b.local.history(id)
		stopA := ha[len(ha)-1]
		startB := hb[len(hb)-1]
		if stopA.started || !startB.started {
			t.Fatalf("%s: last events a %+v b %+v", id.ID, stopA, startB)
		}
		if !stopA.at.Before(startB.at) {
			t.Errorf("%s: b started it at %s, before a stopped it at %s", id.ID, startB.at.Format(time.StampMicro), stopA.at.Format(time.StampMicro))
		}
	}
	if got := testutil.ToFloat64(a.m.ClusterHandovers.WithLabelValues("lost")); int(got) != len(mine) {
		t.Errorf("handovers_total{reason=lost} = %v, want %d", got, len(mine))
	}
}

func TestTwoReplicas(t *testing.T) {
	c := newTestCluster(t, testTTL)
	list := ids(access.Fixture, 24)
	a := c.start("a", 2, func(o *Options) { o.Seed = seeds(list) })
	b := c.start("b", 2, nil)
	d := c.start("d", 2, nil)
	assignedTo(t, list, 2, []*testMember{a, b, d}, 20*time.Second)
	for id, n := range owned(a, b, d) {
		if n != 2 {
			t.Errorf("%s runs on %d members, want 2", id.ID, n)
		}
	}
	d.crash()
	assignedTo(t, list, 2, []*testMember{a, b}, 3*testTTL)
	// Every ID had a second owner throughout: the crash left no gap.
	for _, id := range list {
		if at := uncovered(id, a, b); !at.IsZero() && owned(a, b)[id] == 0 {
			t.Errorf("%s followed by nobody at %s", id.ID, at)
		}
	}
}

func TestAdminCallsTakeEffectEverywhere(t *testing.T) {
	c := newTestCluster(t, testTTL)
	a := c.start("a", 1, nil)
	b := c.start("b", 1, nil)
	poll.Wait(t, 10*time.Second, "both members joined", func() bool { return a.node.Ready() == nil && b.node.Ready() == nil })

	added, err := a.node.Follow(access.Fixture, "x1")
	if err != nil || !added {
		t.Fatalf("Follow on a = %v, %v; want added", added, err)
	}
	if added, err := b.node.Follow(access.Fixture, "x1"); err != nil || added {
		t.Fatalf("Follow again on b = %v, %v; want not added", added, err)
	}
	x1 := ID{access.Fixture, "x1"}
	poll.Wait(t, 10*time.Second, "x1 running on one member", func() bool { return owned(a, b)[x1] == 1 })

	removed, err := b.node.Unfollow(access.Fixture, "x1")
	if err != nil || !removed {
		t.Fatalf("Unfollow on b = %v, %v; want removed", removed, err)
	}
	poll.Wait(t, 10*time.Second, "x1 stopped everywhere", func() bool { return owned(a, b)[x1] == 0 })
	if removed, err := a.node.Unfollow(access.Fixture, "x1"); err != nil || removed {
		t.Errorf("Unfollow again = %v, %v; want not removed", removed, err)
	}
	// Discovery does not bring back what an admin removed; an admin does.
	if added, err := a.node.FollowFrom(access.Fixture, "x1", fixtures.SourceDiscovery); err != nil || added {
		t.Errorf("FollowFrom after a DELETE = %v, %v; want not added", added, err)
	}
	if added, err := a.node.Follow(access.Fixture, "x1"); err != nil || !added {
		t.Errorf("Follow after a DELETE = %v, %v; want added", added, err)
	}
	if _, err := a.node.Follow(access.Fixture, "a/b"); !errors.Is(err, fixtures.ErrInvalidID) {
		t.Errorf("Follow(a/b) = %v, want ErrInvalidID", err)
	}
}

func TestFollowRefusedAtTheCap(t *testing.T) {
	c := newTestCluster(t, testTTL)
	a := c.start("a", 1, func(o *Options) { o.MaxFollowed = 2 })
	poll.Wait(t, 10*time.Second, "a joined", func() bool { return a.node.Ready() == nil })
	for _, id := range []string{"c1", "c2"} {
		if _, err := a.node.Follow(access.Fixture, id); err != nil {
			t.Fatal(err)
		}
	}
	poll.Wait(t, 10*time.Second, "the set to hold 2", func() bool { return len(a.node.Status().Followed) == 2 })
	if _, err := a.node.Follow(access.Fixture, "c3"); !errors.Is(err, fixtures.ErrTooManyStreams) {
		t.Errorf("Follow past the cap = %v, want ErrTooManyStreams", err)
	}
	if added, err := a.node.Follow(access.Fixture, "c1"); err != nil || added {
		t.Errorf("Follow of a followed ID at the cap = %v, %v; want not added, no error", added, err)
	}
}

func TestSeedKeepsWhatIsThereAndWhatWasRemoved(t *testing.T) {
	c := newTestCluster(t, testTTL)
	first := c.start("a", 1, nil)
	poll.Wait(t, 10*time.Second, "a joined", func() bool { return first.node.Ready() == nil })
	if _, err := first.node.Follow(access.Fixture, "kept"); err != nil {
		t.Fatal(err)
	}
	if _, err := first.node.Follow(access.Fixture, "removed"); err != nil {
		t.Fatal(err)
	}
	if _, err := first.node.Unfollow(access.Fixture, "removed"); err != nil {
		t.Fatal(err)
	}
	first.stop()
	<-first.done

	list := []ID{{access.Fixture, "kept"}, {access.Fixture, "removed"}, {access.Fixture, "new"}}
	a := c.start("a2", 1, func(o *Options) { o.Seed = seeds(list) })
	want := map[string]fixtures.Source{"kept": fixtures.SourceAdmin, "new": fixtures.SourceEnv}
	poll.Wait(t, 10*time.Second, "the seeded set", func() bool {
		got := map[string]fixtures.Source{}
		for _, f := range a.node.Status().Followed {
			got[f.ID] = f.Source
		}
		return fmt.Sprint(got) == fmt.Sprint(want)
	})
}

func TestFollowedSetSurvivesEveryMember(t *testing.T) {
	c := newTestCluster(t, testTTL)
	a := c.start("a", 1, nil)
	poll.Wait(t, 10*time.Second, "a joined", func() bool { return a.node.Ready() == nil })
	for _, id := range []string{"s1", "s2", "s3"} {
		if _, err := a.node.Follow(access.Fixture, id); err != nil {
			t.Fatal(err)
		}
	}
	a.stop()
	<-a.done
	natstestRestart(t, c)

	b := c.start("b", 1, nil)
	assignedTo(t, []ID{{access.Fixture, "s1"}, {access.Fixture, "s2"}, {access.Fixture, "s3"}}, 1, []*testMember{b}, 10*time.Second)
}

func TestOneLeaderAtATime(t *testing.T) {
	c := newTestCluster(t, testTTL)
	var running, most atomic.Int32
	var terms atomic.Int32
	leader := func(o *Options) {
		o.Leader = func(ctx context.Context) {
			terms.Add(1)
			n := running.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			<-ctx.Done()
			running.Add(-1)
		}
	}
	a := c.start("a", 1, leader)
	b := c.start("b", 1, leader)
	poll.Wait(t, 10*time.Second, "a leader", func() bool { return running.Load() == 1 })
	first := a
	if b.node.Status().Leader == "b" || testutil.ToFloat64(b.m.ClusterLeader) == 1 {
		first = b
	}
	poll.Wait(t, 10*time.Second, "the leader's gauge", func() bool { return testutil.ToFloat64(first.m.ClusterLeader) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = first.node.Drain(ctx)
	poll.Wait(t, testTTL, "the other member to lead", func() bool { return terms.Load() == 2 && running.Load() == 1 })
	if most.Load() != 1 {
		t.Errorf("%d leaders ran at once", most.Load())
	}
}

func TestAssignSpreadsEvenly(t *testing.T) {
	for _, tc := range []struct {
		keys, members, replicas int
	}{
		{6, 3, 1}, {7, 3, 1}, {2, 3, 1}, {60, 3, 1}, {1000, 3, 1}, {1000, 7, 1},
		{24, 3, 2}, {25, 3, 2}, {1000, 5, 2}, {5, 2, 3},
	} {
		t.Run(fmt.Sprintf("%d keys %d members %d replicas", tc.keys, tc.members, tc.replicas), func(t *testing.T) {
			keys, members := testKeys(tc.keys), testMembers(tc.members)
			got := Assign(keys, members, tc.replicas)
			if !reflect.DeepEqual(got, Assign(slices.Clone(keys), members, tc.replicas)) {
				t.Fatal("Assign is not deterministic")
			}
			load := map[string]int{}
			for _, key := range keys {
				owners := got[key]
				if want := min(tc.replicas, tc.members); len(owners) != want || len(slices.Compact(slices.Sorted(slices.Values(owners)))) != want {
					t.Fatalf("%s: owners %v, want %d distinct", key, owners, want)
				}
				for _, m := range owners {
					load[m]++
				}
			}
			lo, hi := tc.keys, 0
			for _, m := range members {
				lo, hi = min(lo, load[m]), max(hi, load[m])
			}
			if hi-lo > 1 {
				t.Errorf("loads %v: from %d to %d, want at most one apart", load, lo, hi)
			}
		})
	}
}

func TestAssignMovesLittleWhenAMemberJoins(t *testing.T) {
	keys := testKeys(1000)
	before := Assign(keys, testMembers(3), 1)
	after := Assign(keys, testMembers(4), 1)
	moved := 0
	for _, key := range keys {
		if before[key][0] != after[key][0] {
			moved++
		}
	}
	// A quarter must move to the new member; bounded loads move some more.
	t.Logf("%d of %d keys moved when a fourth member joined", moved, len(keys))
	if moved < len(keys)/4 || moved > len(keys)*2/5 {
		t.Errorf("%d of %d keys moved to a fourth member, want a quarter and not much more", moved, len(keys))
	}
	// A key added or removed moves few others.
	for _, tc := range []struct {
		name string
		keys []string
	}{{"one key added", append(slices.Clone(keys), "fixture.new")}, {"one key removed", keys[1:]}} {
		next := Assign(tc.keys, testMembers(3), 1)
		moved := 0
		for _, key := range keys[1:] {
			if before[key][0] != next[key][0] {
				moved++
			}
		}
		t.Logf("%s: %d of %d keys moved", tc.name, moved, len(keys))
		if moved > 10 {
			t.Errorf("%s: %d keys moved, want a few", tc.name, moved)
		}
	}
	// Rendezvous alone: the keys that move go to the new member.
	for _, key := range keys {
		b, a := Owners(key, testMembers(3), 1)[0], Owners(key, testMembers(4), 1)[0]
		if a != b && a != "m3" {
			t.Fatalf("%s moved from %s to %s, not to the new member", key, b, a)
		}
	}
}

func testKeys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = FollowedKey(access.Fixture, fmt.Sprintf("3f1c2b7e-%04d-4e5b-9c0d-1a2b3c4d5e6f", i))
	}
	return out
}

func testMembers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("m%d", i)
	}
	return out
}

func TestIDToken(t *testing.T) {
	for _, id := range []string{"3f1c2b7e-2d1a-4e5b-9c0d-1a2b3c4d5e6f", "a.b", "a b", "日本", "=x", "a*b>c", "-"} {
		tok := IDToken(id)
		if !tokenRE.MatchString(tok) && !(tok[0] == '=' && tokenRE.MatchString(tok[1:])) {
			t.Errorf("IDToken(%q) = %q: not a KV key token", id, tok)
		}
		got, ok := ParseIDToken(tok)
		if !ok || got != id {
			t.Errorf("ParseIDToken(IDToken(%q)) = %q, %v", id, got, ok)
		}
		if back, ok := parseFollowedKey(FollowedKey(access.Venue, id)); !ok || back != (ID{access.Venue, id}) {
			t.Errorf("parseFollowedKey(FollowedKey(%q)) = %v, %v", id, back, ok)
		}
	}
	for _, bad := range []string{"", "=", "=!!", "a.b"} {
		if _, ok := ParseIDToken(bad); ok {
			t.Errorf("ParseIDToken(%q) accepted", bad)
		}
	}
}

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{"prod": true, "a_b-1": true, "": false, "a.b": false, "a b": false, string(make([]byte, 65)): false} {
		if err := ValidateName(name); (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v", name, err)
		}
	}
	if err := ValidateName(DefaultInstance()); err != nil {
		t.Errorf("DefaultInstance: %v", err)
	}
	if DefaultInstance() == DefaultInstance() {
		t.Error("DefaultInstance gives the same name twice")
	}
}

// TestRenewalWhoseAnswerWasLost: a renewal that NATS applied but whose answer
// never came (NATS went away meanwhile) leaves the member key one revision
// ahead. The member must see its own value there and go on, not take it for
// another process and stop its streams until the key expires.
func TestRenewalWhoseAnswerWasLost(t *testing.T) {
	c := newTestCluster(t, testTTL)
	list := ids(access.Fixture, 4)
	a := c.start("a", 1, func(o *Options) { o.Seed = seeds(list) })
	assignedTo(t, list, 1, []*testMember{a}, 10*time.Second)

	js := c.srv.JetStream(t)
	kv, err := js.KeyValue(context.Background(), LeasesBucket("test"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), memberKey("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(context.Background(), memberKey("a"), e.Value(), e.Revision()); err != nil {
		t.Fatal(err)
	}
	// Two renewal periods later a has renewed past the lost answer.
	renewed := e.Revision()
	poll.Wait(t, testTTL, "a to renew again", func() bool {
		e, err := kv.Get(context.Background(), memberKey("a"))
		return err == nil && e.Revision() > renewed+1
	})
	if n := len(a.local.running()); n != len(list) {
		t.Errorf("a runs %d of %d streams after a lost renewal answer", n, len(list))
	}
	if got := testutil.ToFloat64(a.m.ClusterHandovers.WithLabelValues("lost")); got != 0 {
		t.Errorf("handovers_total{reason=lost} = %v, want 0", got)
	}
	if err := a.node.Ready(); err != nil {
		t.Errorf("Ready = %v", err)
	}
}

// failoverSamples returns cluster_failover_seconds' sample count and sum.
func failoverSamples(t *testing.T, m *metrics.Metrics) (uint64, float64) {
	t.Helper()
	var pb dto.Metric
	if err := m.ClusterFailover.Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.GetHistogram().GetSampleCount(), pb.GetHistogram().GetSampleSum()
}

func BenchmarkAssign(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("%d IDs 3 members", n), func(b *testing.B) {
			keys, members := testKeys(n), testMembers(3)
			b.ReportAllocs()
			for b.Loop() {
				Assign(keys, members, 1)
			}
		})
	}
}

// TestOperatorKeysThatNameNothingAreIgnored: keys an operator put by hand
// that name no valid fixture or venue are skipped, and the valid ones next
// to them are followed.
func TestOperatorKeysThatNameNothingAreIgnored(t *testing.T) {
	c := newTestCluster(t, testTTL)
	a := c.start("a", 1, nil)
	poll.Wait(t, 10*time.Second, "a joined", func() bool { return a.node.Ready() == nil })
	kv := c.followedKV()
	for _, key := range []string{"fixture.ok1", "fixture.a.b", "match.x", "venue.=" + IDToken("a/b"), "venue.=_-_", "fixture." + IDToken("sr:match:1")} {
		if _, err := kv.Put(context.Background(), key, []byte("not json")); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	want := []ID{{access.Fixture, "ok1"}, {access.Fixture, "sr:match:1"}}
	assignedTo(t, want, 1, []*testMember{a}, 10*time.Second)
	if n := len(a.node.Status().Followed); n != len(want) {
		t.Errorf("the set holds %d IDs, want the %d valid ones", n, len(want))
	}
}
