package sink

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

func TestCorePublish(t *testing.T) {
	s := natstest.Run(t, func(o *server.Options) { o.JetStream = false })
	nc := connect(t, s, nil)
	sub, err := nc.SubscribeSync("dc.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	p := NewCore(nc, CoreOptions{})
	defer p.Close()

	r := NewRoute("dc", "basketball", "fixture", "F.1", "read:stream_events", "s/b/x/F.1/r/e")
	payload := []byte("{\"type\":\"event\",\"data\":{\"seq\":1}}\n\x00\xff")
	at := time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC)
	var got error = errors.New("done not called")
	if err := p.Publish(context.Background(), r.Msg(payload, at), func(err error) { got = err }); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if got != nil {
		t.Fatalf("done(%v), want done(nil) before Publish returns", got)
	}
	m := recv(t, sub)
	if m.Subject != "dc.basketball.fixture.F%2E1.events" {
		t.Fatalf("subject %q", m.Subject)
	}
	if !bytes.Equal(m.Data, payload) {
		t.Fatalf("payload %q, want %q", m.Data, payload)
	}
	want := map[string]string{
		HeaderTopic:      "s/b/x/F.1/r/e",
		HeaderScope:      "read:stream_events",
		HeaderSport:      "basketball",
		HeaderFixtureID:  "F.1",
		HeaderReceivedAt: "2025-01-02T03:04:05.0000006Z",
	}
	if len(m.Header) != len(want) {
		t.Fatalf("headers %v, want %v", m.Header, want)
	}
	for k, v := range want {
		if vs := m.Header.Values(k); len(vs) != 1 || vs[0] != v {
			t.Fatalf("header %s = %v, want %q", k, vs, v)
		}
	}
	if st := p.Stats(); st.Published != 1 || st.Errors != 0 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCorePublishFinalError(t *testing.T) {
	s := natstest.Run(t, func(o *server.Options) { o.JetStream = false; o.MaxPayload = 64 })
	nc := connect(t, s, nil)
	p := NewCore(nc, CoreOptions{})
	defer p.Close()
	var got error
	err := p.Publish(context.Background(), &nats.Msg{Subject: "dc.x", Data: make([]byte, 128)}, func(err error) { got = err })
	if err != nil {
		t.Fatalf("Publish = %v, want nil (the error goes to done)", err)
	}
	if !errors.Is(got, nats.ErrMaxPayload) {
		t.Fatalf("done(%v), want ErrMaxPayload", got)
	}
	if st := p.Stats(); st.Dropped != 1 || st.Errors != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCoreBackpressure(t *testing.T) {
	s := natstest.Run(t, func(o *server.Options) { o.JetStream = false })
	nc := connect(t, s, func(o *ConnectOptions) { o.ReconnectBufSize = 256 })
	p := NewCore(nc, CoreOptions{})
	defer p.Close()

	s.Stop()
	waitStatus(t, nc, nats.RECONNECTING)

	// The first message goes into nats.go's reconnect buffer and fills it.
	big := &nats.Msg{Subject: "dc.x", Data: make([]byte, 300)}
	dones := newDoneSink(4)
	if err := p.Publish(context.Background(), big, dones.done); err != nil {
		t.Fatalf("first Publish: %v", err)
	}
	if err := dones.wait(t, 1, time.Second)[0]; err != nil {
		t.Fatalf("first done(%v)", err)
	}

	// The next one blocks until its ctx ends; done is not called.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Publish(ctx, &nats.Msg{Subject: "dc.x", Data: []byte("b")}, dones.done); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked Publish = %v, want DeadlineExceeded", err)
	}

	// One with no deadline blocks until the server is back, then succeeds.
	res := make(chan error, 1)
	go func() {
		res <- p.Publish(context.Background(), &nats.Msg{Subject: "dc.x", Data: []byte("c")}, dones.done)
	}()
	natstest.Rerun(t, s)
	select {
	case err := <-res:
		if err != nil {
			t.Fatalf("Publish after reconnect = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Publish still blocked after the server came back")
	}
	if err := dones.wait(t, 1, time.Second)[0]; err != nil {
		t.Fatalf("done(%v) after reconnect", err)
	}
	if st := p.Stats(); st.Published != 2 || st.Retries < 1 || st.Dropped != 0 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCoreCloseUnblocks(t *testing.T) {
	s := natstest.Run(t, func(o *server.Options) { o.JetStream = false })
	nc := connect(t, s, func(o *ConnectOptions) { o.ReconnectBufSize = 64 })
	p := NewCore(nc, CoreOptions{})
	s.Stop()
	waitStatus(t, nc, nats.RECONNECTING)
	if err := p.Publish(context.Background(), &nats.Msg{Subject: "dc.x", Data: make([]byte, 100)}, nil); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() { res <- p.Publish(context.Background(), &nats.Msg{Subject: "dc.x", Data: []byte("x")}, nil) }()
	// Wait until the publisher is blocked, then close it.
	poll.Wait(t, waitLimit, "Publish to block", func() bool { return p.Stats().Pending == 1 })
	p.Close()
	select {
	case err := <-res:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked Publish after Close = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Publish still blocked after Close")
	}
	if err := p.Publish(context.Background(), &nats.Msg{Subject: "dc.x"}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close = %v", err)
	}
}
