package mqttclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/gorilla/websocket"

	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

func TestDialSubscribesInBatches(t *testing.T) {
	checkGoroutines(t)
	b := startBroker(t, newBrokerHook())
	var rec recorder
	topics := make([]string, 20)
	for i := range topics {
		topics[i] = fmt.Sprintf("s/b/b1te1/fx-1/r/%02d", i)
	}
	c := dial(t, Options{URL: b.url(), ClientID: "stream-batches", Topics: topics, QoS: 1, Handler: rec.handle, Logger: testLogger(t)})

	if c.ConnectedAt().IsZero() {
		t.Error("ConnectedAt is zero")
	}
	subs := b.hook.subscribePackets()
	var seen []string
	for _, filters := range subs {
		if len(filters) > MaxTopicsPerSubscribe {
			t.Errorf("SUBSCRIBE with %d topics, want at most %d", len(filters), MaxTopicsPerSubscribe)
		}
		seen = append(seen, filters...)
	}
	if len(subs) != 3 || len(seen) != len(topics) {
		t.Errorf("broker saw %d SUBSCRIBEs with %d topics, want 3 with %d", len(subs), len(seen), len(topics))
	}
	for _, topic := range topics {
		b.publish(t, topic, []byte(topic), 1)
	}
	poll.Wait(t, 5*time.Second, "a message on every topic", func() bool { return rec.len() == len(topics) })
	for i, m := range rec.all() {
		if m.Topic != topics[i] || string(m.Payload) != topics[i] {
			t.Errorf("message %d: topic %q payload %q, want %q", i, m.Topic, m.Payload, topics[i])
		}
	}
}

func TestMessagesInOrder(t *testing.T) {
	tests := []struct {
		name string
		qos  byte
	}{
		{name: "qos0", qos: 0},
		{name: "qos1", qos: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGoroutines(t)
			b := startBroker(t, newBrokerHook())
			var rec recorder
			id := "stream-order-" + tt.name
			dial(t, Options{URL: b.url(), ClientID: id, Topics: []string{"a", "b"}, QoS: tt.qos, Handler: rec.handle})

			const n = 300
			for i := range n {
				b.publish(t, []string{"a", "b"}[i%2], []byte(strconv.Itoa(i)), tt.qos)
			}
			poll.Wait(t, 10*time.Second, "all messages", func() bool { return rec.len() == n })
			for i, m := range rec.all() {
				if got := string(m.Payload); got != strconv.Itoa(i) {
					t.Fatalf("message %d has payload %q: out of order", i, got)
				}
				if m.QoS != tt.qos {
					t.Fatalf("message %d has QoS %d, want %d", i, m.QoS, tt.qos)
				}
				m.Ack() // no-op without ManualAck
			}
			if tt.qos == 1 { // acknowledged automatically after the Handler
				poll.Wait(t, 5*time.Second, "every PUBACK", func() bool { return b.hook.count(b.hook.qosComplete, id) == n })
			}
		})
	}
}

func TestManualAck(t *testing.T) {
	checkGoroutines(t)
	b := startBroker(t, newBrokerHook())
	got := make(chan Message, 2)
	const id = "stream-manual"
	dial(t, Options{URL: b.url(), ClientID: id, Topics: []string{"t"}, QoS: 1, ManualAck: true,
		Handler: func(m Message) { got <- m }})

	b.publish(t, "t", []byte("one"), 1)
	var m Message
	select {
	case m = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
	// mochi does not redeliver on the same connection, so check what it
	// still waits for: the message stays in flight until Ack.
	if n := b.inflight(id); n != 1 {
		t.Fatalf("broker has %d messages in flight before Ack, want 1", n)
	}
	if n := b.hook.count(b.hook.qosComplete, id); n != 0 {
		t.Fatalf("broker saw %d PUBACKs before Ack", n)
	}
	m.Ack()
	m.Ack() // second call sends nothing
	poll.Wait(t, 5*time.Second, "PUBACK", func() bool { return b.hook.count(b.hook.qosComplete, id) == 1 })
	poll.Wait(t, 5*time.Second, "nothing in flight", func() bool { return b.inflight(id) == 0 })

	// QoS 0 messages need no Ack; calling it is harmless.
	b.publish(t, "t", []byte("two"), 0)
	select {
	case m = <-got:
		m.Ack()
	case <-time.After(5 * time.Second):
		t.Fatal("no QoS 0 message")
	}
	if m.QoS != 0 {
		t.Errorf("QoS = %d, want 0", m.QoS)
	}
}

func TestHandshakeErrors(t *testing.T) {
	retryAt := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		status     int
		retryAfter string
		want       error
		minRetry   time.Duration
		maxRetry   time.Duration
	}{
		{name: "401", status: http.StatusUnauthorized, want: ErrHandshakeRefused},
		{name: "403", status: http.StatusForbidden, want: ErrHandshakeRefused},
		{name: "429 retry-after seconds", status: http.StatusTooManyRequests, retryAfter: "7", want: ErrHandshakeFailed, minRetry: 7 * time.Second, maxRetry: 7 * time.Second},
		{name: "503 retry-after date", status: http.StatusServiceUnavailable, retryAfter: retryAt, want: ErrHandshakeFailed, minRetry: 80 * time.Second, maxRetry: 91 * time.Second},
		{name: "302 redirect to the same url", status: http.StatusFound, want: ErrHandshakeFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGoroutines(t)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				if tt.status == http.StatusFound {
					w.Header().Set("Location", r.URL.String())
				}
				w.WriteHeader(tt.status)
				fmt.Fprintf(w, "refused %s", r.URL) // body echoes the URL
			}))
			t.Cleanup(srv.Close)

			_, err := Dial(context.Background(), Options{
				URL: signedURL(strings.TrimPrefix(srv.URL, "http://")), ClientID: "stream-hs",
				Topics: []string{"t"}, Handler: func(Message) {}, Logger: testLogger(t),
			})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var he *HandshakeError
			if !errors.As(err, &he) {
				t.Fatalf("err %T is not a *HandshakeError", err)
			}
			if he.Status != tt.status {
				t.Errorf("Status = %d, want %d", he.Status, tt.status)
			}
			if he.RetryAfter < tt.minRetry || he.RetryAfter > tt.maxRetry {
				t.Errorf("RetryAfter = %s, want %s..%s", he.RetryAfter, tt.minRetry, tt.maxRetry)
			}
			assertNoSecrets(t, "error", err.Error())
		})
	}
}

func TestDialErrorsHoldNoSecrets(t *testing.T) {
	// Connection refused: nothing listens on the port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	tests := []struct {
		name string
		url  string
	}{
		{name: "connection refused", url: signedURL(addr)},
		{name: "unknown host", url: "ws://host.invalid/mqtt?" + secretQuery},
		{name: "bad url", url: "ws://exa mple.com/mqtt?" + secretQuery},
		{name: "bad scheme", url: "https://example.com/mqtt?" + secretQuery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := Dial(ctx, Options{URL: tt.url, ClientID: "stream-x", Handler: func(Message) {}, Logger: testLogger(t)})
			if err == nil {
				t.Fatal("Dial succeeded")
			}
			assertNoSecrets(t, "error", err.Error())
		})
	}
}

func TestConnectRefused(t *testing.T) {
	checkGoroutines(t)
	hook := newBrokerHook()
	hook.refuseClient = "stream-refused"
	b := startBroker(t, hook)
	_, err := Dial(context.Background(), Options{URL: b.url(), ClientID: "stream-refused", Topics: []string{"t"},
		Handler: func(Message) {}, Logger: testLogger(t)})
	if !errors.Is(err, ErrConnectRefused) {
		t.Fatalf("err = %v, want ErrConnectRefused", err)
	}
	assertNoSecrets(t, "error", err.Error())
}

func TestSubscribeRefused(t *testing.T) {
	checkGoroutines(t)
	hook := newBrokerHook()
	hook.refuseTopic = "s/forbidden"
	b := startBroker(t, hook)
	topics := []string{"s/1", "s/2", "s/3", "s/4", "s/5", "s/6", "s/7", "s/8", "s/9", "s/forbidden"}
	const id = "stream-acl"
	_, err := Dial(context.Background(), Options{URL: b.url(), ClientID: id, Topics: topics, QoS: 1,
		Handler: func(Message) {}, Logger: testLogger(t)})
	if !errors.Is(err, ErrSubscribeRefused) {
		t.Fatalf("err = %v, want ErrSubscribeRefused", err)
	}
	if !strings.Contains(err.Error(), "s/forbidden") || strings.Contains(err.Error(), "s/9") {
		t.Errorf("error should name the refused topic only: %v", err)
	}
	assertNoSecrets(t, "error", err.Error())
	poll.Wait(t, 5*time.Second, "the failed client to be disconnected", func() bool { return hook.count(hook.gone, id) == 1 })
}

func TestConnectionLost(t *testing.T) {
	checkGoroutines(t)
	b := startBroker(t, newBrokerHook())
	const id = "stream-kicked"
	c := dial(t, Options{URL: b.url(), ClientID: id, Topics: []string{"t"}, Handler: func(Message) {}, Logger: testLogger(t)})

	select {
	case <-c.Done():
		t.Fatal("Done closed before the kick")
	default:
	}
	b.kick(t, id)
	poll.Recv(t, c.Done(), 2*time.Second, "Done after the broker closed the connection")
	err := c.Err()
	if !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("Err = %v, want ErrConnectionLost", err)
	}
	if cause := strings.TrimPrefix(err.Error(), ErrConnectionLost.Error()); len(cause) < 3 {
		t.Errorf("Err %q does not say what happened", err)
	}
	assertNoSecrets(t, "error", err.Error())
	c.Close() // still fine afterwards; the loss stays the reason
	if !errors.Is(c.Err(), ErrConnectionLost) {
		t.Errorf("Err after Close = %v, want ErrConnectionLost", c.Err())
	}
}

func TestConnectionLostWhileHandlerBusy(t *testing.T) {
	checkGoroutines(t)
	b := startBroker(t, newBrokerHook())
	const id = "stream-busy"
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	c := dial(t, Options{URL: b.url(), ClientID: id, Topics: []string{"t"}, Handler: func(Message) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	}})
	defer close(release)
	b.publish(t, "t", []byte("block"), 0)
	poll.Recv(t, entered, 5*time.Second, "the handler to be called")
	b.kick(t, id)
	// paho reads nothing while the Handler blocks, so the loss is seen once
	// it returns (or when a keepalive write fails), not before.
	release <- struct{}{}
	poll.Recv(t, c.Done(), 2*time.Second, "Done once the handler returned")
	if !errors.Is(c.Err(), ErrConnectionLost) {
		t.Fatalf("Err = %v, want ErrConnectionLost", c.Err())
	}
}

func TestClose(t *testing.T) {
	checkGoroutines(t)
	b := startBroker(t, newBrokerHook())
	const id = "stream-close"
	c := dial(t, Options{URL: b.url(), ClientID: id, Topics: []string{"t"}, Handler: func(Message) {}, Logger: testLogger(t)})
	c.Close()
	poll.Recv(t, c.Done(), time.Second, "Done after Close")
	if err := c.Err(); err != nil {
		t.Errorf("Err = %v, want nil", err)
	}
	c.Close() // idempotent
	poll.Wait(t, 5*time.Second, "DISCONNECT at the broker", func() bool { return b.hook.count(b.hook.disconnectsRead, id) == 1 })
	poll.Wait(t, 5*time.Second, "the broker to drop the client", func() bool { return b.hook.count(b.hook.gone, id) == 1 })
}

func TestDialContext(t *testing.T) {
	// silent accepts TCP connections and never writes a byte.
	silent := func(t *testing.T, accepted chan<- struct{}) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		t.Cleanup(func() { _ = ln.Close(); <-done })
		go func() {
			defer close(done)
			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					_ = c.Close()
				}
			}()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				conns = append(conns, c)
				accepted <- struct{}{}
			}
		}()
		return signedURL(ln.Addr().String())
	}
	// mute upgrades the WebSocket and never answers CONNECT.
	mute := func(t *testing.T, accepted chan<- struct{}) string {
		return fakeBroker(t, func(ws *websocket.Conn) {
			accepted <- struct{}{}
			for {
				if _, _, err := ws.NextReader(); err != nil {
					return
				}
			}
		})
	}
	tests := []struct {
		name    string
		server  func(*testing.T, chan<- struct{}) string
		timeout time.Duration // ConnectTimeout; 0: cancel ctx once the server has the connection
		want    error
	}{
		{name: "cancel during websocket handshake", server: silent, want: context.Canceled},
		{name: "cancel while waiting for connack", server: mute, want: context.Canceled},
		{name: "connect timeout during handshake", server: silent, timeout: 300 * time.Millisecond, want: context.DeadlineExceeded},
		{name: "connect timeout waiting for connack", server: mute, timeout: 300 * time.Millisecond, want: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGoroutines(t)
			accepted := make(chan struct{}, 4)
			u := tt.server(t, accepted)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			connectTimeout := tt.timeout
			if connectTimeout == 0 {
				connectTimeout = time.Minute
				go func() {
					select {
					case <-accepted:
						cancel()
					case <-ctx.Done():
					}
				}()
			}
			start := time.Now()
			_, err := Dial(ctx, Options{URL: u, ClientID: "stream-ctx", Topics: []string{"t"}, ConnectTimeout: connectTimeout,
				Handler: func(Message) {}, Logger: testLogger(t)})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Dial took %s to give up", took)
			}
			assertNoSecrets(t, "error", err.Error())
		})
	}
}

func TestDialCancelledBeforeStart(t *testing.T) {
	checkGoroutines(t)
	b := startBroker(t, newBrokerHook())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Dial(ctx, Options{URL: b.url(), ClientID: "stream-early", Handler: func(Message) {}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestOptionsValidation(t *testing.T) {
	h := func(Message) {}
	u := "wss://example.com/mqtt?" + secretQuery
	tests := []struct {
		name string
		opts Options
	}{
		{name: "no url", opts: Options{ClientID: "c", Handler: h}},
		{name: "http scheme", opts: Options{URL: "http://example.com/mqtt?" + secretQuery, ClientID: "c", Handler: h}},
		{name: "no host", opts: Options{URL: "ws:///mqtt?" + secretQuery, ClientID: "c", Handler: h}},
		{name: "unparsable", opts: Options{URL: "ws://ex%zz.com/?" + secretQuery, ClientID: "c", Handler: h}},
		{name: "no client id", opts: Options{URL: u, Handler: h}},
		{name: "qos 2", opts: Options{URL: u, ClientID: "c", QoS: 2, Handler: h}},
		{name: "no handler", opts: Options{URL: u, ClientID: "c"}},
		{name: "empty topic", opts: Options{URL: u, ClientID: "c", Topics: []string{"a", ""}, Handler: h}},
		{name: "negative keepalive", opts: Options{URL: u, ClientID: "c", KeepAlive: -time.Second, Handler: h}},
		{name: "negative connect timeout", opts: Options{URL: u, ClientID: "c", ConnectTimeout: -time.Second, Handler: h}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Dial(context.Background(), tt.opts)
			if err == nil {
				t.Fatal("Dial accepted invalid options")
			}
			assertNoSecrets(t, "error", err.Error())
		})
	}
}

func TestReadAcrossFrames(t *testing.T) {
	checkGoroutines(t)
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.TopicName = "t"
	pub.Payload = []byte("split payload")
	u := fakeBroker(t, func(ws *websocket.Conn) {
		sc := newWSConn(ws, nil)
		if _, err := packets.ReadPacket(sc); err != nil { // CONNECT
			return
		}
		// CONNACK split over three frames.
		for _, frame := range [][]byte{{0x20}, {0x02, 0x00}, {0x00}} {
			if err := ws.WriteMessage(websocket.BinaryMessage, frame); err != nil {
				return
			}
		}
		cp, err := packets.ReadPacket(sc)
		if err != nil {
			return
		}
		sub := cp.(*packets.SubscribePacket)
		ack := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
		ack.MessageID = sub.MessageID
		ack.ReturnCodes = make([]byte, len(sub.Topics))
		// SUBACK and two PUBLISHes in one frame, then one PUBLISH spread
		// over two frames and an empty frame.
		var one strings.Builder
		_ = ack.Write(&one)
		_ = pub.Write(&one)
		_ = pub.Write(&one)
		var pb strings.Builder
		_ = pub.Write(&pb)
		for _, frame := range [][]byte{[]byte(one.String()), []byte(pb.String()[:5]), {}, []byte(pb.String()[5:])} {
			if err := ws.WriteMessage(websocket.BinaryMessage, frame); err != nil {
				return
			}
		}
		for { // until the client goes
			if _, err := packets.ReadPacket(sc); err != nil {
				return
			}
		}
	})
	var rec recorder
	dial(t, Options{URL: u, ClientID: "stream-frames", Topics: []string{"t"}, Handler: rec.handle})
	poll.Wait(t, 5*time.Second, "three messages", func() bool { return rec.len() == 3 })
	for _, m := range rec.all() {
		if string(m.Payload) != "split payload" {
			t.Errorf("payload %q", m.Payload)
		}
	}
}

func TestWSConnConcurrentWrites(t *testing.T) {
	checkGoroutines(t)
	const writers, each = 8, 50
	received := make(chan []byte, writers*each)
	u := fakeBroker(t, func(ws *websocket.Conn) {
		for {
			_, p, err := ws.ReadMessage()
			if err != nil {
				return
			}
			received <- p
		}
	})
	ws, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newWSConn(ws, nil)
	var failed atomic.Bool
	done := make(chan struct{})
	for w := range writers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				msg := strings.Repeat(strconv.Itoa(w), 100+i)
				if _, err := c.Write([]byte(msg)); err != nil {
					failed.Store(true)
					return
				}
			}
		}()
	}
	for range writers {
		<-done
	}
	if failed.Load() {
		t.Fatal("write failed")
	}
	for range writers * each {
		var p []byte
		select {
		case p = <-received:
		case <-time.After(5 * time.Second):
			t.Fatal("missing messages")
		}
		if strings.Trim(string(p), string(p[0])) != "" {
			t.Fatalf("interleaved message %q", p)
		}
	}
	_ = c.Close()
	_ = c.Close()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v, want net.ErrClosed", err)
	}
}

// TestSocketClosedByClient covers paho giving up on a connection by itself
// (it closes the socket, for example when no PINGRESP came in time): Done
// closes at once, even though paho reports the loss only after the Handler
// has returned.
func TestSocketClosedByClient(t *testing.T) {
	checkGoroutines(t)
	b := startBroker(t, newBrokerHook())
	c := dial(t, Options{URL: b.url(), ClientID: "stream-selfclose", Topics: []string{"t"}, Handler: func(Message) {}})
	c.mu.Lock()
	sock := c.sock
	c.mu.Unlock()
	_ = sock.Close()
	poll.Recv(t, c.Done(), 2*time.Second, "Done after the socket was closed under the client")
	if err := c.Err(); !errors.Is(err, ErrConnectionLost) || !errors.Is(err, errClosedByClient) {
		t.Fatalf("Err = %v, want ErrConnectionLost wrapping errClosedByClient", err)
	}
}
