package main

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// TestSoak runs the bridge through every fault it is built to survive, in
// turn: grants expiring every few seconds throughout, the access API answering
// 500 and 429, forced disconnects, and a NATS server restart. JetStream mode
// must end with every message in the stream exactly once; core mode with no
// duplicate and every loss accounted for. Both must give back the memory and
// goroutines they used.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: skipped with -short")
	}
	for _, tt := range []struct {
		name      string
		jetStream bool
	}{
		{name: "jetstream", jetStream: true},
		{name: "core", jetStream: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g0, heap0 := settledUsage()
			var r soakResult
			t.Run("run", func(t *testing.T) { r = soak(t, tt.jetStream) })
			if t.Failed() {
				return
			}
			checkReleased(t, g0, heap0)
			r.check(t, tt.jetStream)
		})
	}
}

// soakResult is what a soak run counted.
type soakResult struct {
	subjects    int
	expected    int // messages the service sent between the first and last seq seen, per subject
	unique      int // of those, present in NATS (the stream, or seen by a core subscriber)
	lost        int // expected - unique
	dups        int // extra copies in NATS
	received    float64
	published   float64
	duplicates  float64 // suppressed by the bridge
	dropped     float64 // messages_dropped_total, every reason but unknown_topic
	inflight    float64
	failed      float64 // dropped because NATS refused them for good (JetStream: must not happen)
	disconnects uint64
	rotations   float64
	reconnects  float64
	emuDropped  uint64  // dropped by the emulator's broker (slow subscriber or full queue)
	emuQueued   int     // most messages queued for persistent sessions while NATS was away
	held        float64 // most messages the bridge held (received, not settled in NATS) while NATS was away
	heldLimit   float64 // its bound, DATACORE_MAX_INFLIGHT
}

// soak runs one mode; the environment is stopped when it returns.
func soak(t *testing.T, jetStream bool) soakResult {
	fixtureIDs := []string{"sr:match:101", "sr:match:102", "sr:match:103", "sr:match:104"}
	venueIDs := []string{"venue-101"}
	o := sim.Options{
		Fixtures: fixtureIDs, Venues: venueIDs,
		GrantTTL: 3 * time.Second,
		Feed:     sim.Feed{Rate: 100, ScoreboardRate: 40},
	}
	if jetStream {
		// Persistent sessions rotate about every second with 3 s grants, so
		// a connection gets about 100 messages in all: a window of 50
		// unacknowledged messages makes the broker queue while NATS is away.
		o.MaxInflight = 50
	}
	e := newEnv(t, envOptions{
		sim:       o,
		jetStream: jetStream,
		configure: func(c *config.Config) {
			c.Fixtures, c.Venues = fixtureIDs, venueIDs
			c.LogLevel = "info"
			if jetStream {
				// Room for every connection's broker window, so that while
				// NATS is away the broker reaches the window and queues,
				// rather than the bridge blocking first.
				c.MaxInflight = 4096
			}
		},
	})
	c := e.collect()
	streams := len(fixtureIDs) + len(venueIDs)
	rotations := func() float64 { return testutil.ToFloat64(e.m.Rotations.WithLabelValues("ok")) }

	// Grants expire every 2-3 s throughout; let every stream rotate a few times.
	poll.Wait(t, 30*time.Second, "two rotations of every stream", func() bool { return rotations() >= float64(2*streams) })

	// The access API fails a share of calls with 500 and 429 for a while.
	e.emu.SetFaults(sim.Faults{Access500: 0.3, Access429: 0.2, RetryAfter: time.Second})
	poll.Wait(t, 30*time.Second, "access calls answered 500 and 429", func() bool {
		return testutil.ToFloat64(e.m.AccessCalls.WithLabelValues("server_error")) >= 2 &&
			testutil.ToFloat64(e.m.AccessCalls.WithLabelValues("rate_limited")) >= 2
	})
	e.emu.SetFaults(sim.Faults{})
	// Before disconnecting, every stream holds a grant it can reconnect with.
	poll.Wait(t, 30*time.Second, "every stream on a fresh grant", func() bool {
		for _, s := range e.subscriptions() {
			if s.State != fixtures.StateConnected || s.GrantExpiresAt == nil || time.Until(*s.GrantExpiresAt) < 1500*time.Millisecond {
				return false
			}
		}
		return true
	})

	// Forced disconnects, each once every stream is back and the feed has
	// gone on for more than a second (AWS IoT Core takes one CONNECT per
	// second per client id, so a session lost again sooner waits that long
	// to be resumed).
	probe := e.subjectOf("fixture", fixtureIDs[0], sim.ScopeEvents)
	for range 3 {
		at := time.Now()
		e.emu.DisconnectAll()
		poll.Wait(t, 15*time.Second, "every stream to reconnect", func() bool {
			for _, s := range e.subscriptions() {
				if s.State != fixtures.StateConnected || s.ConnectedSince == nil || s.ConnectedSince.Before(at) {
					return false
				}
			}
			return true
		})
		back := e.emu.LastSeq("fixture", fixtureIDs[0], sim.ScopeEvents)
		poll.Wait(t, 15*time.Second, "a second of messages after the reconnect", func() bool {
			return c.maxSeq(probe) >= back+35 // events come at 4/13 of the fixture's 100 per second
		})
	}

	// The NATS server restarts (same port and store) while the feed goes on:
	// it stays away for 100 events of one fixture (about 3 s), past the
	// broker's in-flight window of 100 unacknowledged messages per client.
	e.ns.Shutdown()
	away := e.emu.LastSeq("fixture", fixtureIDs[0], sim.ScopeEvents)
	var (
		queued int
		held   float64
	)
	poll.Wait(t, 10*time.Second, "the feed to go on while NATS is away", func() bool {
		queued = max(queued, e.emu.Stats().Queued)
		held = max(held, testutil.ToFloat64(e.m.Inflight))
		return e.emu.LastSeq("fixture", fixtureIDs[0], sim.ScopeEvents) >= away+100
	})
	e.startNATS()
	poll.Wait(t, 15*time.Second, "the bridge to publish again", func() bool { return c.maxSeq(probe) > away+100 })

	// Everything up to now must arrive.
	want := upTo(e, fixtureIDs, venueIDs)
	var stream *collector
	if jetStream {
		stream = readStream(t, e, "DATACORE")
		deadline := time.Now().Add(30 * time.Second)
		for {
			tl := stream.tally(want)
			if tl.subjects == len(want) && tl.lost == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("the stream still misses %d messages on %d subjects: %v; emulator: %+v", tl.lost, len(tl.lostBelow), tl.lostBelow, e.emu.Stats())
				break
			}
			select {
			case <-stream.changed:
			case <-time.After(100 * time.Millisecond):
			}
		}
	} else {
		poll.Wait(t, 15*time.Second, "the core subscriber to catch up", func() bool { return caughtUp(c, want) })
	}

	// Stop following, so that the counters settle, then count.
	for _, id := range fixtureIDs {
		e.b.Supervisor().Unfollow(access.Fixture, id)
	}
	for _, id := range venueIDs {
		e.b.Supervisor().Unfollow(access.Venue, id)
	}
	// A stream stopped for good ends its persistent session, reading what
	// still arrives meanwhile: count once no connection is left.
	poll.Wait(t, 30*time.Second, "no connection left", func() bool {
		for _, s := range e.emu.Sessions() {
			if s.Connected {
				return false
			}
		}
		return true
	})
	// Every stream's goroutine has returned (a stopped stream leaves the
	// streams gauge) and nothing is in flight: the counters are final.
	poll.Wait(t, 30*time.Second, "every stream stopped with nothing in flight", func() bool {
		s := gather(t, e.m.Registry)
		return s.sum("datacore_streams", "") == 0 && s.sum("datacore_inflight_messages", "") == 0
	})
	c.checkProblems()

	// One gather: every counter of the same instant.
	s := gather(t, e.m.Registry)
	emu := e.emu.Stats()
	r := soakResult{
		received:    s.sum("datacore_messages_received_total", ""),
		published:   s.sum("datacore_messages_published_total", ""),
		duplicates:  s.sum("datacore_duplicates_suppressed_total", ""),
		dropped:     s.sum("datacore_messages_dropped_total", "unknown_topic"),
		failed:      s.value("datacore_messages_dropped_total", "publish_error"),
		inflight:    s.sum("datacore_inflight_messages", ""),
		disconnects: emu.Disconnects,
		emuDropped:  emu.Dropped,
		rotations:   s.value("datacore_rotations_total", "ok"),
		reconnects:  s.sum("datacore_reconnects_total", ""),
		emuQueued:   queued,
		held:        held,
		heldLimit:   float64(e.cfg.MaxInflight),
	}
	var tl tally
	if jetStream {
		stream.checkProblems()
		tl = stream.tally(want)
		// Copies of any message, also past want, count.
		tl.dups = stream.tally(stream.highest()).dups
	} else {
		tl = c.tally(c.highest())
	}
	r.subjects, r.unique, r.lost, r.dups = tl.subjects, tl.received-tl.dups, tl.lost, tl.dups
	r.expected = r.unique + r.lost
	if r.subjects != len(want) {
		t.Errorf("messages on %d of %d subjects", r.subjects, len(want))
	}
	return r
}

// check reports a run's numbers and asserts what its mode promises.
func (r soakResult) check(t *testing.T, jetStream bool) {
	t.Helper()
	t.Logf("faults: %.0f rotations, %d connections closed by the service, %.0f reconnects, a NATS restart, access 500s and 429s",
		r.rotations, r.disconnects, r.reconnects)
	t.Logf("while NATS was away the bridge held at most %.0f messages (bound %.0f)", r.held, r.heldLimit)
	if r.held > r.heldLimit {
		t.Errorf("the bridge held %.0f messages, over its bound of %.0f", r.held, r.heldLimit)
	}
	t.Logf("bridge: received %.0f = published %.0f + duplicates suppressed %.0f + dropped %.0f + in flight %.0f",
		r.received, r.published, r.duplicates, r.dropped, r.inflight)
	if diff := r.received - (r.published + r.duplicates + r.dropped + r.inflight); diff != 0 {
		t.Errorf("received != published + duplicates + dropped + in flight (off by %.0f)", diff)
	}
	if r.dups != 0 {
		t.Errorf("%d duplicates reached NATS", r.dups)
	}
	if jetStream {
		t.Logf("jetstream: %d subjects, %d messages expected, %d in the stream, %d lost, %d duplicated; broker queued up to %d while NATS was away, dropped %d",
			r.subjects, r.expected, r.unique, r.lost, r.dups, r.emuQueued, r.emuDropped)
		if r.lost != 0 {
			t.Errorf("%d messages missing from the stream", r.lost)
		}
		// Messages arriving as the streams are unfollowed at the end are
		// dropped as "shutdown" (and left unacknowledged at the broker);
		// none may fail to publish.
		if r.failed != 0 {
			t.Errorf("%.0f messages failed to publish in JetStream mode", r.failed)
		}
		return
	}
	// Core: what the subscriber missed was lost upstream (sent while no
	// connection was subscribed: the bridge never saw it), inside the
	// bridge (counted as dropped), or in NATS (published while the test's
	// subscriber was reconnecting to the restarted server).
	unique := r.received - r.duplicates
	upstream := float64(r.expected) - unique
	inNATS := r.published - float64(r.unique)
	t.Logf("core: %d subjects, %d messages expected, %d received by the subscriber, %d lost (upstream %.0f, in the bridge %.0f, in NATS %.0f), %d duplicated; broker dropped %d",
		r.subjects, r.expected, r.unique, r.lost, upstream, r.dropped, inNATS, r.dups, r.emuDropped)
	// The bridge's own share is exact (the identity above); the other two
	// are estimates: the subscriber may have missed the very first messages
	// too, which are not counted as expected.
}

// highest returns the highest seq seen per subject.
func (c *collector) highest() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.seqs))
	for subject, seen := range c.seqs {
		for s := range seen {
			out[subject] = max(out[subject], s)
		}
	}
	return out
}

// readStream reads a JetStream stream from its first message on, into a collector.
func readStream(t *testing.T, e *env, name string) *collector {
	t.Helper()
	c := &collector{t: t, sport: e.cfg.Sport, prefix: e.cfg.SubjectPrefix,
		seqs: map[string]map[uint64]int{}, changed: make(chan struct{}, 1)}
	js := e.nats.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer on %s: %v", name, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		c.take(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	})
	if err != nil {
		t.Fatalf("consume %s: %v", name, err)
	}
	t.Cleanup(cc.Stop)
	return c
}

// settledUsage returns the goroutine count and the live heap after garbage
// collection. It collects twice, since sync.Pool keeps what it held through
// one collection (its victim cache), and reads HeapAlloc, the bytes of live
// objects, rather than HeapInuse, which also counts the free room of every
// span still holding one object and so moves with fragmentation.
func settledUsage() (int, uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapAlloc
}

// checkReleased waits until the goroutines and the heap are back to about
// where they were (g0, heap0), and fails the test if they do not come back.
func checkReleased(t *testing.T, g0 int, heap0 uint64) {
	t.Helper()
	const (
		goroutineSlack = 5
		heapSlack      = 8 << 20 // the live heap came back within 1 MiB in runs with -race
	)
	var g int
	var heap uint64
	deadline := time.Now().Add(15 * time.Second)
	for {
		g, heap = settledUsage()
		if g <= g0+goroutineSlack && heap <= heap0+heapSlack {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("after the run: %d goroutines (%d before), %s live heap (%s before)\n%s",
				g, g0, mib(heap), mib(heap0), buf)
			return
		}
		time.Sleep(50 * time.Millisecond) // polling interval between GCs, not synchronisation
	}
	t.Logf("after the run: %d goroutines (%d before), %s live heap (%s before)", g, g0, mib(heap), mib(heap0))
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
