package mqttclient

import (
	"fmt"
	"testing"
	"time"

	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

// TestAckFreesStore checks that a QoS 1 message stays in paho's in-memory
// store until Message.Ack and leaves it then, whether the receiver published
// it or dropped it: acknowledged messages do not pile up in memory.
func TestAckFreesStore(t *testing.T) {
	checkGoroutines(t)
	b := startBroker(t, newBrokerHook())
	const n = 5
	got := make(chan Message, n)
	c := dial(t, Options{URL: b.url(), ClientID: "stream-store", Topics: []string{"t"}, QoS: 1, ManualAck: true,
		Handler: func(m Message) { got <- m }})
	for i := range n {
		b.publish(t, "t", fmt.Appendf(nil, "m%d", i), 1)
	}
	var msgs []Message
	for len(msgs) < n {
		select {
		case m := <-got:
			msgs = append(msgs, m)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d messages, want %d", len(msgs), n)
		}
	}
	if s := c.storedInbound(); s != n {
		t.Fatalf("store holds %d received messages before Ack, want %d", s, n)
	}
	for _, m := range msgs {
		m.Ack()
	}
	poll.Wait(t, 5*time.Second, "an empty store", func() bool { return c.storedInbound() == 0 })
	if u := c.Unacked(); u != 0 {
		t.Errorf("Unacked = %d after Ack, want 0", u)
	}
}
