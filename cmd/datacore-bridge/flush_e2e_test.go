package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/internal/testbed"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// TestShutdownFlushesCoreNATS holds what the bridge writes to NATS (a proxy
// between them stops forwarding) while it publishes, then shuts it down: the
// shutdown must wait until NATS has everything (its flush's PING comes back
// only once what was held before it has reached the server), so that when
// Shutdown returns and the process would exit, every message the bridge
// counted as published is at a subscriber. The proxy forwards again only
// when it sees that PING; once Shutdown returns it cuts the connection,
// dropping whatever it still holds, as an exiting process would.
func TestShutdownFlushesCoreNATS(t *testing.T) {
	const id = "sr:match:75"
	var px *holdingProxy
	var received atomic.Int64
	var sub *nats.Conn
	e := newEnv(t, envOptions{
		sim: sim.Options{Fixtures: []string{id}, Feed: sim.Feed{Rate: 1000}},
		configure: func(c *config.Config) {
			c.Fixtures = []string{id}
			// Subscribed before the bridge starts: every message it
			// publishes can reach the subscriber.
			var err error
			if sub, err = nats.Connect(c.NATSURLs[0]); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(sub.Close)
			if _, err := sub.Subscribe(c.SubjectPrefix+".>", func(*nats.Msg) { received.Add(1) }); err != nil {
				t.Fatal(err)
			}
			if err := sub.Flush(); err != nil {
				t.Fatal(err)
			}
			px = startHoldingProxy(t, strings.TrimPrefix(c.NATSURLs[0], "nats://"))
			c.NATSURLs = []string{"nats://" + px.addr()}
		},
	})
	var err error
	poll.Wait(t, 10*time.Second, "messages at the subscriber", func() bool { return received.Load() > 100 })

	px.hold()
	held := e.b.Published()
	poll.Wait(t, 10*time.Second, "200 messages published while NATS does not get them", func() bool {
		return e.b.Published() >= held+200
	})
	done := make(chan error, 1)
	go func() { done <- e.b.Shutdown(context.Background()) }()
	select {
	case <-px.sawPing:
		px.release()
		err = <-done
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown neither flushed nor returned in 20 s")
	}
	px.cut()
	if err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if !e.b.NATS().IsClosed() {
		t.Error("the NATS connection is not closed (drained) after Shutdown")
	}
	published := int64(e.b.Published())
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := poll.Until(t.Context(), 5*time.Second, "every message", func() bool { return received.Load() >= published }); err != nil {
		t.Errorf("the subscriber got %d messages of the %d the bridge published (%d held when the shutdown began): what NATS had not got when Shutdown returned was lost",
			received.Load(), published, published-int64(held))
	}
	if got := received.Load(); got > published {
		t.Errorf("the subscriber got %d messages, more than the %d published", got, published)
	}
	t.Logf("published %d (%d while NATS did not get them), received %d", published, published-int64(held), received.Load())
}

// TestShutdownLeavesEveryAcknowledgedMessageInTheStream shuts a JetStream
// bridge down while it publishes at a high rate: every message it counted
// as published (acknowledged) is in the stream, and nothing more was stored
// that it did not count.
func TestShutdownLeavesEveryAcknowledgedMessageInTheStream(t *testing.T) {
	const id = "sr:match:76"
	e := newEnv(t, envOptions{
		sim:       sim.Options{Fixtures: []string{id}, Feed: sim.Feed{Rate: 1000}},
		jetStream: true,
		configure: func(c *config.Config) { c.Fixtures = []string{id} },
	})
	poll.Wait(t, 15*time.Second, "500 messages published to JetStream", func() bool { return e.b.Published() >= 500 })
	if err := e.b.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	published := e.b.Published()

	nc, err := nats.Connect(e.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, testbed.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := gather(t, e.m.Registry)
	t.Logf("published (acknowledged) %d, in the stream %d, dropped at shutdown %.0f", published, info.State.Msgs, s.value("datacore_messages_dropped_total", "shutdown"))
	if info.State.Msgs != published {
		t.Errorf("the stream holds %d messages, the bridge counted %d acknowledged", info.State.Msgs, published)
	}
}

// holdingProxy forwards TCP between clients and a server; while holding it
// keeps what clients send instead of forwarding it, and notes when a NATS
// PING arrives among it.
type holdingProxy struct {
	t       *testing.T
	ln      net.Listener
	target  string
	sawPing chan struct{}

	mu      sync.Mutex
	holding bool
	pinged  bool
	held    map[net.Conn]*bytes.Buffer // per server connection
	conns   []net.Conn
	wg      sync.WaitGroup
}

func startHoldingProxy(t *testing.T, target string) *holdingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdingProxy{t: t, ln: ln, target: target, sawPing: make(chan struct{}), held: map[net.Conn]*bytes.Buffer{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.cut)
	return p
}

func (p *holdingProxy) addr() string { return p.ln.Addr().String() }

func (p *holdingProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(c, s)
			_ = c.Close()
		}()
		go func() {
			defer p.wg.Done()
			defer s.Close()
			p.forward(c, s)
		}()
	}
}

// forward copies from the client c to the server s, or keeps it while holding.
func (p *holdingProxy) forward(c, s net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if p.holding {
				b := p.held[s]
				if b == nil {
					b = &bytes.Buffer{}
					p.held[s] = b
				}
				b.Write(buf[:n])
				if !p.pinged && bytes.Contains(b.Bytes(), []byte("PING\r\n")) {
					p.pinged = true
					close(p.sawPing)
				}
				p.mu.Unlock()
			} else {
				p.mu.Unlock()
				if _, werr := s.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// hold starts keeping what clients send.
func (p *holdingProxy) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding = true
}

// release forwards what was kept and stops holding.
func (p *holdingProxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for s, b := range p.held {
		if _, err := s.Write(b.Bytes()); err != nil && !errors.Is(err, net.ErrClosed) {
			p.t.Errorf("proxy: %v", err)
		}
	}
	clear(p.held)
	p.holding = false
}

// cut closes the listener and every connection, dropping what is kept,
// and waits for the proxy's goroutines.
func (p *holdingProxy) cut() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	clear(p.held)
	p.mu.Unlock()
	p.wg.Wait()
}
