package sim

import (
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

// pclient is a paho client with a persistent session (clean session false)
// that acknowledges only when the test says so.
type pclient struct {
	paho.Client
	mu   sync.Mutex
	seqs map[uint64]int // seq -> times received
	held []paho.Message // received, not yet acknowledged
	ack  bool           // acknowledge at once
	lost chan error
}

func dialPersistent(t *testing.T, url, clientID string, ack bool) *pclient {
	t.Helper()
	c := &pclient{seqs: map[uint64]int{}, ack: ack, lost: make(chan error, 1)}
	o := paho.NewClientOptions().
		AddBroker(url).
		SetClientID(clientID).
		SetCleanSession(false).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).
		SetAutoAckDisabled(true).
		SetConnectionLostHandler(func(_ paho.Client, err error) { c.lost <- err }).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			_, d := decode(t, m.Payload())
			c.mu.Lock()
			c.seqs[d.Seq]++
			if c.ack {
				m.Ack()
			} else {
				c.held = append(c.held, m)
			}
			c.mu.Unlock()
		})
	c.Client = paho.NewClient(o)
	if err := wait(c.Connect()); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func (c *pclient) subscribe(t *testing.T, topic string) {
	t.Helper()
	tok := c.Subscribe(topic, 1, nil)
	if err := wait(tok); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if code := tok.(*paho.SubscribeToken).Result()[topic]; code != 1 {
		t.Fatalf("SUBACK %#x, want 1", code)
	}
}

func (c *pclient) received() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seqs)
}

// ackAll acknowledges what is held and every later message at once.
func (c *pclient) ackAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ack = true
	for _, m := range c.held {
		m.Ack()
	}
	c.held = nil
}

// missing returns the seqs from the lowest received up to hi that were not received.
func (c *pclient) missing(hi uint64) []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	lo := hi
	for s := range c.seqs {
		lo = min(lo, s)
	}
	var out []uint64
	for s := lo; s <= hi; s++ {
		if c.seqs[s] == 0 {
			out = append(out, s)
		}
	}
	return out
}

func (c *pclient) has(seq uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seqs[seq] > 0
}

func TestPersistentSessionQueuesWhileOffline(t *testing.T) {
	s := startSim(t, Options{Feed: Feed{Rate: 200}})
	g := grantOf(t, s, "F1", false, ScopeEvents)
	topic := topicsOf(g)[0]
	c := dialPersistent(t, g.URL, g.ClientID, true)
	c.subscribe(t, topic)
	poll.Wait(t, waitLimit, "messages", func() bool { return c.received() >= 10 })

	if n := s.DisconnectAll(); n != 1 {
		t.Fatalf("DisconnectAll closed %d", n)
	}
	select {
	case <-c.lost:
	case <-time.After(waitLimit):
		t.Fatal("connection not lost")
	}
	away := s.LastSeq("fixture", "F1", ScopeEvents)
	poll.Wait(t, waitLimit, "messages sent while away", func() bool { return s.LastSeq("fixture", "F1", ScopeEvents) >= away+50 })
	poll.Wait(t, waitLimit, "them queued", func() bool { return s.Stats().Queued > 0 })

	// Resume without subscribing again: the session kept the subscription.
	c2 := dialPersistent(t, g.URL, g.ClientID, true)
	want := s.LastSeq("fixture", "F1", ScopeEvents) + 20
	poll.Wait(t, waitLimit, "every message up to the resume and after", func() bool { return c2.has(want) })
	for seq := away + 1; seq <= want; seq++ {
		if !c2.has(seq) && !c.has(seq) {
			t.Errorf("seq %d lost across the resume", seq)
		}
	}
	if st := s.Stats(); st.Dropped != 0 || st.Queued != 0 {
		t.Errorf("Dropped = %d, Queued = %d after the resume, want 0", st.Dropped, st.Queued)
	}

	// The grant's ACL still holds: another grant's topic is refused.
	other := topicsOf(grantOf(t, s, "F2", false, ScopeEvents))[0]
	tok := c2.Subscribe(other, 1, nil)
	if err := wait(tok); err != nil {
		t.Fatal(err)
	}
	if code := tok.(*paho.SubscribeToken).Result()[other]; code != 0x80 {
		t.Errorf("SUBACK for another grant's topic on a resumed session = %#x, want 0x80", code)
	}
}

func TestPersistentSessionQueuesAtInflightLimit(t *testing.T) {
	const window = 10
	s := startSim(t, Options{Feed: Feed{Rate: 300}, MaxInflight: window})
	g := grantOf(t, s, "F1", false, ScopeEvents)
	c := dialPersistent(t, g.URL, g.ClientID, false)
	c.subscribe(t, topicsOf(g)[0])
	poll.Wait(t, waitLimit, "a full window", func() bool { return c.received() >= window })
	first := s.LastSeq("fixture", "F1", ScopeEvents)
	poll.Wait(t, waitLimit, "more messages sent", func() bool { return s.LastSeq("fixture", "F1", ScopeEvents) >= first+3*window })
	if n := c.received(); n != window {
		t.Fatalf("received %d messages without acknowledging, want the window of %d", n, window)
	}
	if st := s.Stats(); st.Dropped != 0 || st.Queued == 0 {
		t.Fatalf("Dropped = %d, Queued = %d at the window, want 0 and some", st.Dropped, st.Queued)
	}
	c.ackAll()
	hi := s.LastSeq("fixture", "F1", ScopeEvents)
	poll.Wait(t, waitLimit, "the queue to drain", func() bool { return c.has(hi) && s.Stats().Queued == 0 })
	if miss := c.missing(hi); len(miss) != 0 {
		t.Errorf("missing seqs %v", miss)
	}
	if st := s.Stats(); st.Dropped != 0 {
		t.Errorf("Dropped = %d", st.Dropped)
	}
}

func TestCleanSessionReplacesPersistent(t *testing.T) {
	s := startSim(t, Options{Feed: Feed{Rate: 200}})
	g := grantOf(t, s, "F1", false, ScopeEvents)
	c := dialPersistent(t, g.URL, g.ClientID, true)
	c.subscribe(t, topicsOf(g)[0])
	c.Disconnect(0)
	poll.Wait(t, waitLimit, "messages queued for the offline session", func() bool { return s.Stats().Queued > 0 })
	clean := mustDial(t, g.URL, g.ClientID)
	poll.Wait(t, waitLimit, "the queue dropped", func() bool { return s.Stats().Queued == 0 })
	select {
	case m := <-clean.msgs:
		t.Errorf("a clean session got %s from the persistent one", m.payload)
	default:
	}
}
