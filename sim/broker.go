package sim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/datacore-bridge/datacore-bridge/internal/mqttws"
)

const (
	listenerID         = "datacore-sim"
	maxTopicsPerSub    = 8  // AWS IoT: topics in one SUBSCRIBE
	maxSubsPerConn     = 50 // AWS IoT: subscriptions per connection
	connectWait        = 10 * time.Second
	outboundQueue      = 1024 // packets queued per client before the broker drops
	maxIncomingMessage = 256 << 10
)

// Reasons a connection is closed by the emulator.
var (
	errLifetime      = errors.New("connection lifetime reached")
	errDisconnectAll = errors.New("disconnected by the emulator")
	errTooManyTopics = errors.New("too many topics in one SUBSCRIBE")
	errTooManySubs   = errors.New("too many subscriptions on one connection")
)

// session is one accepted MQTT connection.
type session struct {
	cl    *mqtt.Client
	g     *grant
	timer *time.Timer
	subs  atomic.Pointer[map[string]byte] // subscribed topic -> granted QoS
	// offered counts QoS 0 messages handed to the broker for this client,
	// written those written to it or dropped: the difference paces Flood.
	offered, written atomic.Int64
	// subscribing is set while a SUBSCRIBE of the client is processed: the
	// ACL checks then are for the filters (and retained messages), not for
	// feed messages to queue.
	subscribing atomic.Int32
}

func (ss *session) stopTimer() {
	if ss.timer != nil {
		ss.timer.Stop()
	}
}

// qos returns the QoS the session subscribed topic with, and whether it did.
func (ss *session) qos(topic string) (byte, bool) {
	m := ss.subs.Load()
	if m == nil {
		return 0, false
	}
	q, ok := (*m)[topic]
	return q, ok
}

func (s *Server) startBroker() error {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumQos = 1 // AWS IoT: QoS 0 and 1 only; a QoS 2 subscription is granted as 1
	// The in-flight limit (MaxInflight) is kept by the ACL hook, which drops
	// (clean sessions) or queues (persistent ones) at it; mochi's own limit,
	// which drops, only backs it up against races between deliveries.
	caps.MaximumInflight = uint16(min(2*s.opts.MaxInflight, math.MaxUint16))
	caps.MaximumClientWritesPending = outboundQueue
	caps.MaximumSessionExpiryInterval = uint32(queueExpiry / time.Second) // AWS IoT: persistent sessions expire after an hour
	caps.MaximumMessageExpiryInterval = int64(queueExpiry / time.Second)
	caps.WildcardSubAvailable = 0
	caps.SharedSubAvailable = 0

	b := mqtt.New(&mqtt.Options{
		InlineClient:             true,
		Capabilities:             caps,
		Logger:                   brokerLogger(s.log),
		SysTopicResendInterval:   3600,
		ClientNetWriteBufferSize: 32 << 10,
		ClientNetReadBufferSize:  4 << 10,
	})
	if err := b.AddHook(&hook{s: s}, nil); err != nil {
		return err
	}
	// The listener registers the emulator's WebSocket endpoint, so that
	// closing the broker disconnects its clients; connections arrive through
	// Server.handleMQTT.
	if err := b.AddListener(mqttws.NewListener(listenerID, "/mqtt")); err != nil {
		return err
	}
	s.broker = b
	return b.Serve()
}

// brokerLogger passes the broker's own logs on only when debug is enabled:
// it logs every refused client at warn level.
func brokerLogger(l *slog.Logger) *slog.Logger {
	if l.Enabled(context.Background(), slog.LevelDebug) {
		return l.With("component", "mqtt")
	}
	return slog.New(slog.DiscardHandler)
}

// handleMQTT checks the signed URL, upgrades to WebSocket and hands the
// connection to the broker until it ends.
func (s *Server) handleMQTT(w http.ResponseWriter, r *http.Request) {
	g, err := s.verifyURL(r.URL.Query())
	if err != nil {
		s.stats.handshakesRefused.Add(1)
		s.log.Debug("handshake refused", "reason", err.Error(), "remote", r.RemoteAddr)
		writePlain(w, http.StatusForbidden, `{"message":"Forbidden"}`)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) || !slices.Contains(websocket.Subprotocols(r), mqttws.Subprotocol) {
		s.stats.handshakesRefused.Add(1)
		writePlain(w, http.StatusBadRequest, `{"message":"a WebSocket upgrade with subprotocol mqtt is required"}`)
		return
	}
	ws, err := mqttws.Upgrade(w, r)
	if err != nil {
		s.stats.handshakesRefused.Add(1)
		return // the upgrader answered
	}
	ws.SetReadLimit(maxIncomingMessage)
	c := &wsConn{Conn: mqttws.NewConn(ws), grant: g}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.Close()
		return
	}
	s.pending[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	s.stats.handshakesOK.Add(1)

	defer func() {
		_ = c.Close()
		s.mu.Lock()
		delete(s.pending, c)
		s.mu.Unlock()
		s.connWG.Done()
	}()
	_ = c.SetDeadline(time.Now().Add(connectWait)) // the broker moves it on after CONNECT
	if err := s.broker.EstablishConnection(listenerID, c); err != nil {
		s.log.Debug("mqtt connection ended", "client", g.clientID, "reason", err.Error())
	}
}

func writePlain(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// DisconnectAll closes every MQTT connection and returns how many it closed.
func (s *Server) DisconnectAll() int {
	s.mu.Lock()
	cls := make([]*mqtt.Client, 0, len(s.sessions))
	for cl := range s.sessions {
		cls = append(cls, cl)
	}
	s.mu.Unlock()
	for _, cl := range cls {
		s.kick(cl, errDisconnectAll)
	}
	return len(cls)
}

// kick closes a client's connection the way AWS IoT does: no DISCONNECT, the socket closes.
func (s *Server) kick(cl *mqtt.Client, cause error) {
	if cl.Closed() {
		return
	}
	s.stats.disconnects.Add(1)
	s.log.Info("closing connection", "client", cl.ID, "reason", cause.Error())
	cl.Stop(cause)
}

// wsConn is a WebSocket connection to the broker (see mqttws.Conn). It
// remembers the grant whose signed URL opened it.
type wsConn struct {
	*mqttws.Conn
	grant   *grant
	session atomic.Pointer[session]
}

// hook enforces the grant rules in the broker and keeps the sessions.
type hook struct {
	mqtt.HookBase
	s *Server
}

func (h *hook) ID() string { return "datacore-sim" }

func (h *hook) Provides(b byte) bool {
	return slices.Contains([]byte{
		mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSessionEstablish, mqtt.OnSessionEstablished,
		mqtt.OnDisconnect, mqtt.OnPacketRead, mqtt.OnSubscribed, mqtt.OnUnsubscribed, mqtt.OnPacketSent,
		mqtt.OnQosComplete, mqtt.OnPublishDropped, mqtt.OnPacketProcessed, mqtt.OnClientExpired,
	}, b)
}

func connOf(cl *mqtt.Client) *wsConn {
	c, _ := cl.Net.Conn.(*wsConn)
	return c
}

// OnConnectAuthenticate lets only the granted client id CONNECT on a signed URL.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	c := connOf(cl)
	if c == nil || cl.ID != c.grant.clientID {
		h.s.stats.connectsRefused.Add(1)
		h.s.log.Info("connect refused", "reason", "client id not granted on this URL", "client", cl.ID)
		return false
	}
	return true
}

// OnACLCheck allows subscribing to (and receiving from) the grant's read
// topics, and publishing to its write topics. The grant is the one whose
// signed URL opened the connection, so a resumed session is held to it too.
// A feed message for a persistent session that must wait is queued here.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	c := connOf(cl)
	if c == nil {
		return false
	}
	read, ok := c.grant.allowed[topic]
	if !ok || read == write {
		return false
	}
	if write {
		return true
	}
	if ss := c.session.Load(); ss != nil && ss.subscribing.Load() > 0 && !cl.Closed() {
		return true // checking a SUBSCRIBE's filter, or sending it retained messages
	}
	if cl.Properties.Clean {
		if cl.State.Inflight.Len() >= h.s.opts.MaxInflight {
			h.s.stats.dropped.Add(1)
			return false
		}
		return true
	}
	payload, staged := h.s.persist.staged.Load(topic)
	if !staged {
		return true
	}
	return h.s.admit(cl, topic, payload.([]byte))
}

// OnSessionEstablish counts a session take-over: the broker disconnects the
// older connection with the same client id right after. A clean session
// replaces a persistent one and its queue.
func (h *hook) OnSessionEstablish(cl *mqtt.Client, pk packets.Packet) {
	skipLowPacketIDs(cl)
	if old, ok := h.s.broker.Clients.Get(cl.ID); ok && !old.Closed() {
		h.s.stats.kicks.Add(1)
		h.s.log.Info("client id taken over", "client", cl.ID)
	}
	if pk.Connect.Clean {
		h.s.dropQueue(cl.ID)
	}
}

// OnClientExpired forgets an expired persistent session's queue.
func (h *hook) OnClientExpired(cl *mqtt.Client) {
	h.s.dropQueue(cl.ID)
}

// OnSessionEstablished starts the connection's lifetime.
func (h *hook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	c := connOf(cl)
	if c == nil {
		return
	}
	s := h.s
	ss := &session{cl: cl, g: c.grant}
	ss.subs.Store(&map[string]byte{})
	c.session.Store(ss)
	s.mu.Lock()
	ss.timer = time.AfterFunc(s.opts.ConnLifetime, func() { s.kick(cl, errLifetime) })
	s.sessions[cl] = ss
	c.grant.conns++
	s.refreshSessionsLocked(c.grant)
	s.mu.Unlock()
	s.stats.connects.Add(1)
	s.log.Info("client connected", "client", cl.ID, "persistent", !cl.Properties.Clean)
	if !cl.Properties.Clean {
		s.openQueue(cl.ID)
		s.wakeQueue(cl.ID)
	}
}

// OnDisconnect forgets the session.
func (h *hook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	s := h.s
	s.mu.Lock()
	ss := s.sessions[cl]
	if ss != nil {
		delete(s.sessions, cl)
		ss.stopTimer()
		ss.g.conns--
		s.refreshSessionsLocked(ss.g)
	}
	s.mu.Unlock()
	if ss != nil {
		args := []any{"client", cl.ID, "reason", errString(err)}
		if !cl.Properties.Clean {
			queued := 0
			if q := s.queueOf(cl.ID); q != nil {
				q.mu.Lock()
				queued = len(q.items)
				q.mu.Unlock()
			}
			args = append(args, "persistent", true, "in_flight", cl.State.Inflight.Len(), "queued", queued)
		}
		s.log.Info("client disconnected", args...)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// OnPacketRead disconnects a client that subscribes to more than 8 topics in
// one SUBSCRIBE or to more than 50 in all, as AWS IoT does.
func (h *hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type != packets.Subscribe {
		return pk, nil
	}
	var cause error
	switch {
	case len(pk.Filters) > maxTopicsPerSub:
		cause = errTooManyTopics
	case cl.State.Subscriptions.Len()+len(pk.Filters) > maxSubsPerConn:
		cause = errTooManySubs
	default:
		if ss := sessionOf(cl); ss != nil {
			ss.subscribing.Add(1)
		}
		return pk, nil
	}
	h.s.kick(cl, cause)
	return pk, packets.ErrRejectPacket
}

// OnPacketProcessed ends what OnPacketRead started for a SUBSCRIBE.
func (h *hook) OnPacketProcessed(cl *mqtt.Client, pk packets.Packet, _ error) {
	if pk.FixedHeader.Type != packets.Subscribe {
		return
	}
	if ss := sessionOf(cl); ss != nil {
		ss.subscribing.Add(-1)
	}
}

// OnSubscribed records what the session receives, for Flood's pacing.
func (h *hook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	ss := sessionOf(cl)
	if ss == nil {
		return
	}
	m := mapsClone(*ss.subs.Load())
	for i, f := range pk.Filters {
		if i < len(codes) && codes[i] <= 2 {
			m[f.Filter] = codes[i]
		}
	}
	ss.subs.Store(&m)
	h.s.wake(ss)
}

// OnUnsubscribed records what the session no longer receives.
func (h *hook) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	ss := sessionOf(cl)
	if ss == nil {
		return
	}
	m := mapsClone(*ss.subs.Load())
	for _, f := range pk.Filters {
		delete(m, f.Filter)
	}
	ss.subs.Store(&m)
}

// OnPacketSent counts messages written, for Flood's pacing.
func (h *hook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type != packets.Publish {
		return
	}
	if ss := sessionOf(cl); ss != nil {
		if pk.FixedHeader.Qos == 0 {
			ss.written.Add(1)
		}
		h.s.wake(ss)
	}
}

// OnQosComplete wakes Flood and the session's queue: a QoS 1 message was acknowledged.
func (h *hook) OnQosComplete(cl *mqtt.Client, _ packets.Packet) {
	if !cl.Properties.Clean {
		h.s.wakeQueue(cl.ID)
	}
	if ss := sessionOf(cl); ss != nil {
		h.s.wake(ss)
	}
}

// OnPublishDropped counts messages the broker dropped for a slow client.
func (h *hook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	h.s.stats.dropped.Add(1)
	if ss := sessionOf(cl); ss != nil {
		if q, _ := ss.qos(pk.TopicName); q == 0 {
			ss.written.Add(1)
		}
		h.s.wake(ss)
	}
}

func sessionOf(cl *mqtt.Client) *session {
	if c := connOf(cl); c != nil {
		return c.session.Load()
	}
	return nil
}

func mapsClone(m map[string]byte) map[string]byte {
	out := make(map[string]byte, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// wake tells the session's streams that it may take more.
func (s *Server) wake(ss *session) {
	for _, st := range ss.g.streams {
		st.notify()
	}
}

// refreshSessionsLocked gives each stream of g the sessions it paces by. Call with s.mu held.
func (s *Server) refreshSessionsLocked(g *grant) {
	for _, st := range g.streams {
		var list []*session
		for _, ss := range s.sessions {
			if containsStream(ss.g.streams, st) {
				list = append(list, ss)
			}
		}
		st.sessions.Store(&list)
		st.notify()
	}
}
