package mqttclient

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

func TestPersistentSessionResumes(t *testing.T) {
	checkGoroutines(t)
	b := startBroker(t, newBrokerHook())
	const id = "stream-persistent"
	got := make(chan Message, 10)
	opts := Options{URL: b.url(), ClientID: id, Topics: []string{"t"}, QoS: 1, ManualAck: true, Persistent: true,
		Handler: func(m Message) { got <- m }}
	c := dial(t, opts)
	if c.SessionPresent() {
		t.Error("first connection reports a session present")
	}

	b.publish(t, "t", []byte("unacked"), 1)
	select {
	case <-got: // not acknowledged: the broker keeps it for the session
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
	if n := c.Unacked(); n != 1 {
		t.Errorf("Unacked = %d, want 1", n)
	}
	b.kick(t, id)
	poll.Recv(t, c.Done(), 5*time.Second, "connection lost")
	b.publish(t, "t", []byte("while away"), 1) // queued for the session

	c2 := dial(t, opts)
	if !c2.SessionPresent() {
		t.Error("second connection does not report the session present")
	}
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case m := <-got:
			seen[string(m.Payload)] = true
			m.Ack()
		case <-time.After(5 * time.Second):
			t.Fatalf("resumed session delivered %v, want the unacknowledged and the queued message", seen)
		}
	}
	if !seen["unacked"] || !seen["while away"] {
		t.Errorf("resumed session delivered %v", seen)
	}
	poll.Wait(t, 5*time.Second, "nothing in flight", func() bool { return b.inflight(id) == 0 })
}

func TestCleanSessionDiscardsOnLoss(t *testing.T) {
	checkGoroutines(t)
	b := startBroker(t, newBrokerHook())
	const id = "stream-clean"
	got := make(chan Message, 10)
	opts := Options{URL: b.url(), ClientID: id, Topics: []string{"t"}, QoS: 1, ManualAck: true,
		Handler: func(m Message) { got <- m }}
	c := dial(t, opts)
	b.kick(t, id)
	poll.Recv(t, c.Done(), 5*time.Second, "connection lost")
	b.publish(t, "t", []byte("while away"), 1)
	c2 := dial(t, opts)
	if c2.SessionPresent() {
		t.Error("clean session reports a session present")
	}
	b.publish(t, "t", []byte("after"), 1)
	select {
	case m := <-got:
		if string(m.Payload) != "after" {
			t.Errorf("got %q first, want only what was sent after the reconnect", m.Payload)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
}

func TestUnsubscribeAndIdle(t *testing.T) {
	checkGoroutines(t)
	b := startBroker(t, newBrokerHook())
	const id = "stream-retire"
	got := make(chan Message, 10)
	c := dial(t, Options{URL: b.url(), ClientID: id, Topics: []string{"a", "b"}, QoS: 1, ManualAck: true,
		Handler: func(m Message) { got <- m }})

	b.publish(t, "a", []byte("one"), 1)
	var m Message
	select {
	case m = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
	// Not idle while a message is unacknowledged.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	err := c.Idle(ctx, 10*time.Millisecond)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Idle with an unacknowledged message = %v, want a deadline error", err)
	}
	idle := make(chan error, 1)
	go func() { idle <- c.Idle(context.Background(), 20*time.Millisecond) }()
	m.Ack()
	select {
	case err := <-idle:
		if err != nil {
			t.Fatalf("Idle after Ack: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Idle did not return after the Ack")
	}
	if n := c.Unacked(); n != 0 {
		t.Errorf("Unacked = %d after Ack", n)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Unsubscribe(ctx); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	b.publish(t, "a", []byte("after unsubscribe"), 1)
	b.publish(t, "b", []byte("after unsubscribe"), 1)
	// The broker routes nothing more: a probe on a fresh subscriber arrives,
	// nothing on the unsubscribed connection.
	probe := make(chan Message, 1)
	dial(t, Options{URL: b.url(), ClientID: "probe", Topics: []string{"a"}, QoS: 1, Handler: func(m Message) { probe <- m }})
	b.publish(t, "a", []byte("probe"), 1)
	select {
	case <-probe:
	case <-time.After(5 * time.Second):
		t.Fatal("no probe message")
	}
	select {
	case m := <-got:
		t.Errorf("message %q after Unsubscribe", m.Payload)
	default:
	}

	c.Close()
	if err := c.Idle(context.Background(), time.Millisecond); !errors.Is(err, ErrClosed) {
		t.Errorf("Idle after Close = %v, want ErrClosed", err)
	}
	if err := c.Unsubscribe(context.Background()); err == nil {
		t.Error("Unsubscribe after Close succeeded")
	}
}
