package sink

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestCoreWaitsForFirstConnection publishes messages with headers before NATS has
// ever been reachable: nats.go refuses them (it does not know yet whether the server
// takes headers), and Core must wait for the first connection and publish them then,
// not drop them.
func TestCoreWaitsForFirstConnection(t *testing.T) {
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := Connect(ctx, ConnectOptions{URLs: "nats://127.0.0.1:" + itoa(port), ReconnectWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("Connect with no server up: %v", err)
	}
	t.Cleanup(nc.Close)
	if nc.Status() == nats.CONNECTED {
		t.Fatal("connected although no server runs")
	}
	var onRetry atomic.Uint64
	p := NewCore(nc, CoreOptions{OnRetry: func() { onRetry.Add(1) }})
	defer p.Close()

	const n = 5
	r := NewRoute("dc", "basketball", "fixture", "F1", "read:stream_events", "s/b/x/F1/r/e")
	dones := newDoneSink(n)
	published := make(chan error, 1)
	go func() {
		for i := range n {
			if err := p.Publish(context.Background(), r.Msg([]byte{byte('0' + i)}, time.Now()), dones.done); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	// The first message must be waiting, not dropped.
	poll.Wait(t, waitLimit, "Publish to wait for the connection", func() bool {
		select {
		case err := <-dones:
			t.Fatalf("done(%v) before NATS was up, want Publish to wait", err)
		default:
		}
		return p.Stats().Pending == 1
	})
	if err := p.Ready(); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Ready while waiting = %v, want ErrNotConnected", err)
	}

	// nats.go sends this subscription when it connects, before anything published.
	sub, err := nc.SubscribeSync("dc.>")
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, natstest.OnPort(port), func(o *server.Options) { o.JetStream = false })
	waitStatus(t, nc, nats.CONNECTED)
	select {
	case err := <-published:
		if err != nil {
			t.Fatalf("Publish = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Publish still blocked after NATS came up")
	}
	for i, err := range dones.wait(t, n, 10*time.Second) {
		if err != nil {
			t.Fatalf("done #%d(%v), want nil", i+1, err)
		}
	}
	for i := range n {
		m := recv(t, sub)
		if string(m.Data) != string(rune('0'+i)) || m.Header.Get(HeaderFixtureID) != "F1" {
			t.Fatalf("message %d: %q with headers %v", i, m.Data, m.Header)
		}
	}
	st := p.Stats()
	if st.Published != n || st.Dropped != 0 || st.Errors != 0 || st.Pending != 0 || st.Retries != 1 {
		t.Fatalf("stats %+v, want %d published, 1 retry, nothing dropped or pending", st, n)
	}
	if onRetry.Load() != st.Retries {
		t.Fatalf("OnRetry called %d times, Stats().Retries = %d", onRetry.Load(), st.Retries)
	}
	if err := p.Ready(); err != nil {
		t.Fatalf("Ready once connected = %v", err)
	}
}

// TestCoreHeadersRefusedByConnectedServer checks that a connected server that does not
// take headers is a final error, not a wait: Publish must not block or loop.
func TestCoreHeadersRefusedByConnectedServer(t *testing.T) {
	s := natstest.Run(t, func(o *server.Options) { o.JetStream = false; o.NoHeaderSupport = true })
	nc := connect(t, s, nil)
	p := NewCore(nc, CoreOptions{})
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got error
	msg := &nats.Msg{Subject: "dc.x", Header: nats.Header{"A": []string{"b"}}, Data: []byte("x")}
	if err := p.Publish(ctx, msg, func(err error) { got = err }); err != nil {
		t.Fatalf("Publish = %v, want nil (the error goes to done)", err)
	}
	if !errors.Is(got, nats.ErrHeadersNotSupported) {
		t.Fatalf("done(%v), want ErrHeadersNotSupported", got)
	}
	if st := p.Stats(); st.Dropped != 1 || st.Retries != 0 {
		t.Fatalf("stats %+v", st)
	}
}
