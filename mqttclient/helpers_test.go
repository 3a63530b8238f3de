package mqttclient

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	mochi "github.com/mochi-mqtt/server/v2"
	mpackets "github.com/mochi-mqtt/server/v2/packets"

	"github.com/datacore-bridge/datacore-bridge/internal/logtest"
	"github.com/datacore-bridge/datacore-bridge/internal/mqttws"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

// secretQuery is the query of every signed URL in these tests; none of the
// secrets below may show up in an error or a log line.
const secretQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256" +
	"&X-Amz-Credential=ASIAEXAMPLESECRETID%2F20250101%2Fus-east-1%2Fiotdevicegateway%2Faws4_request" +
	"&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host" +
	"&X-Amz-Signature=5ec2e7a1b0c9d8f7e6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3" +
	"&X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLESESSIONTOKEN%2Bsecret%2Fvalue%3D%3D"

var secrets = []string{
	"ASIAEXAMPLESECRETID",
	"5ec2e7a1b0c9d8f7e6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3",
	"FwoGZXIvYXdzEXAMPLESESSIONTOKEN",
	"X-Amz-Signature",
	"X-Amz-Security-Token",
	"X-Amz-Credential",
}

func assertNoSecrets(t testing.TB, what, s string) {
	t.Helper()
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			t.Errorf("%s contains secret %q: %s", what, sec, s)
		}
	}
}

// signedURL returns a ws:// URL for addr carrying secretQuery.
func signedURL(addr string) string {
	return "ws://" + addr + "/mqtt?" + secretQuery
}

// checkGoroutines fails the test if, once every later cleanup has run, the
// goroutine count does not come back to what it is now.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		// The test's context is done by now: wait on a fresh one.
		if poll.Until(context.Background(), 5*time.Second, "goroutines", func() bool { return runtime.NumGoroutine() <= before }) != nil {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines: %d before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:n])
		}
	})
}

// testLogger returns a debug logger whose output is checked for secrets at
// the end of the test.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	lb := &logtest.Buffer{}
	t.Cleanup(func() { assertNoSecrets(t, "log", lb.String()) })
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// recorder is a Handler that keeps every message.
type recorder struct {
	mu   sync.Mutex
	msgs []Message
}

func (r *recorder) handle(m Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *recorder) all() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// brokerHook observes and steers the in-process broker.
type brokerHook struct {
	mochi.HookBase

	refuseClient string // CONNACK refused for this client id
	refuseTopic  string // SUBACK 0x80 for this filter

	mu              sync.Mutex
	subscribes      [][]string     // filters of every SUBSCRIBE, in order
	qosComplete     map[string]int // PUBACKs that completed a QoS 1 flow, by client
	disconnectsRead map[string]int // DISCONNECT packets read, by client
	gone            map[string]int // connections ended, by client
}

func newBrokerHook() *brokerHook {
	return &brokerHook{
		qosComplete:     map[string]int{},
		disconnectsRead: map[string]int{},
		gone:            map[string]int{},
	}
}

func (h *brokerHook) ID() string { return "test" }

func (h *brokerHook) Provides(b byte) bool {
	return slices.Contains([]byte{
		mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnSubscribe,
		mochi.OnQosComplete, mochi.OnPacketRead, mochi.OnDisconnect, mochi.OnSessionEstablish,
	}, b)
}

// OnSessionEstablish moves the broker's packet ids for the client out of
// the range the client uses: mochi refuses a SUBSCRIBE whose packet id equals
// one of its own in-flight PUBLISHes (which a resumed session has), although
// the two directions' ids are independent in MQTT.
func (h *brokerHook) OnSessionEstablish(cl *mochi.Client, _ mpackets.Packet) {
	for {
		if id, err := cl.NextPacketID(); err != nil || id >= 1024 {
			return
		}
	}
}

func (h *brokerHook) OnConnectAuthenticate(cl *mochi.Client, _ mpackets.Packet) bool {
	return h.refuseClient == "" || cl.ID != h.refuseClient
}

func (h *brokerHook) OnACLCheck(_ *mochi.Client, topic string, write bool) bool {
	return write || h.refuseTopic == "" || topic != h.refuseTopic
}

func (h *brokerHook) OnSubscribe(_ *mochi.Client, pk mpackets.Packet) mpackets.Packet {
	filters := make([]string, 0, len(pk.Filters))
	for _, f := range pk.Filters {
		filters = append(filters, f.Filter)
	}
	h.mu.Lock()
	h.subscribes = append(h.subscribes, filters)
	h.mu.Unlock()
	return pk
}

func (h *brokerHook) OnQosComplete(cl *mochi.Client, _ mpackets.Packet) {
	h.mu.Lock()
	h.qosComplete[cl.ID]++
	h.mu.Unlock()
}

func (h *brokerHook) OnPacketRead(cl *mochi.Client, pk mpackets.Packet) (mpackets.Packet, error) {
	if pk.FixedHeader.Type == mpackets.Disconnect {
		h.mu.Lock()
		h.disconnectsRead[cl.ID]++
		h.mu.Unlock()
	}
	return pk, nil
}

func (h *brokerHook) OnDisconnect(cl *mochi.Client, _ error, _ bool) {
	h.mu.Lock()
	h.gone[cl.ID]++
	h.mu.Unlock()
}

func (h *brokerHook) subscribePackets() [][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.subscribes)
}

func (h *brokerHook) count(m map[string]int, id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return m[id]
}

// broker is an in-process mochi MQTT broker with its WebSocket listener.
type broker struct {
	srv  *mochi.Server
	hook *brokerHook
	addr string
}

// startBroker starts a broker whose WebSocket endpoint is served by an HTTP
// server on a free 127.0.0.1 port; closing the broker at cleanup
// disconnects its clients.
func startBroker(t testing.TB, hook *brokerHook) *broker {
	t.Helper()
	const listenerID = "ws"
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(hook, nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(mqttws.NewListener(listenerID, "/mqtt")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	ep := mqttws.Handler(srv, listenerID)
	hs := httptest.NewServer(ep)
	t.Cleanup(func() {
		// Every client off the broker before it closes (see Endpoint.Close).
		ep.Close()
		hs.Close()
		_ = srv.Close()
	})
	return &broker{srv: srv, hook: hook, addr: hs.Listener.Addr().String()}
}

func (b *broker) url() string { return signedURL(b.addr) }

// publish sends a message through the broker's inline client.
func (b *broker) publish(t testing.TB, topic string, payload []byte, qos byte) {
	t.Helper()
	if err := b.srv.Publish(topic, payload, false, qos); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// inflight returns the number of QoS 1 messages the broker awaits a PUBACK
// for from client id.
func (b *broker) inflight(id string) int {
	cl, ok := b.srv.Clients.Get(id)
	if !ok {
		return -1
	}
	return cl.State.Inflight.Len()
}

// kick closes the client's connection from the broker side.
func (b *broker) kick(t testing.TB, id string) {
	t.Helper()
	cl, ok := b.srv.Clients.Get(id)
	if !ok {
		t.Fatalf("client %q not connected", id)
	}
	cl.Stop(errors.New("kicked by test"))
}

// dial dials b with opts (URL filled in) and closes the Conn at cleanup.
func dial(t *testing.T, opts Options) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// fakeBroker serves one WebSocket upgrade per connection and hands the raw
// gorilla connection to serve; it is a scripted peer for framing tests and
// benchmarks.
func fakeBroker(t testing.TB, serve func(ws *websocket.Conn)) string {
	t.Helper()
	up := websocket.Upgrader{Subprotocols: []string{"mqtt"}}
	var (
		mu     sync.Mutex
		closed bool
		wg     sync.WaitGroup
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if closed {
			mu.Unlock()
			return
		}
		wg.Add(1)
		mu.Unlock()
		defer wg.Done()
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		serve(ws)
	}))
	t.Cleanup(func() {
		mu.Lock()
		closed = true
		mu.Unlock()
		srv.Close()
		wg.Wait()
	})
	return signedURL(strings.TrimPrefix(srv.URL, "http://"))
}
