package sim

import (
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Persistent sessions (CONNECT with clean session false), as AWS IoT Core
// keeps them: the broker (mochi) keeps the session's subscriptions and its
// unacknowledged QoS 1 messages when the connection ends, and resends them
// when a connection with the same client id resumes the session. What mochi
// does not do is queue: it drops a message for a client that already has
// MaxInflight unacknowledged ones, whether it is connected or not. For
// persistent sessions the emulator queues instead, per session:
//
//   - a feed message for a persistent session that is offline, at its
//     in-flight limit, or already has a queue goes to the end of the queue
//     (the ACL hook turns mochi's own delivery down and takes the message);
//   - the queue is sent, oldest first, whenever the session is connected and
//     below its in-flight limit: on resume and after each PUBACK;
//   - a queue holds at most Options.MaxQueued messages (further ones are
//     dropped and counted in Stats.Dropped), a message older than an hour is
//     dropped when its turn comes, and the queue goes with the session: when
//     it expires (an hour after its connection ended) or a clean-session
//     CONNECT with the same client id replaces it.
//
// A message reaches the ACL hook as mochi fans it out; staged maps the topic
// being published by the feed to its payload meanwhile, so that the hook can
// queue it. A topic is only ever published by its own feed stream, under the
// stream's mutex, so one entry per topic suffices.

// queueExpiry is how long a queued message is kept: AWS IoT Core's default
// persistent session expiry.
const queueExpiry = time.Hour

// firstServerPacketID is where the broker's packet ids for a client start.
// mochi refuses a SUBSCRIBE whose packet id equals one of its own in-flight
// PUBLISHes to that client (which a resumed session has), although MQTT keeps
// the two directions' ids apart; clients number their few SUBSCRIBEs from 1.
const firstServerPacketID = 1024

// pqueue is the queue of one persistent session.
type pqueue struct {
	id string

	mu      sync.Mutex
	items   []queued
	pumping bool
}

type queued struct {
	topic   string
	payload []byte
	at      time.Time
}

// persistence is the emulator's per-session queueing state.
type persistence struct {
	staged sync.Map // topic -> payload being published by the feed

	mu     sync.Mutex
	queues map[string]*pqueue // by client id
	count  atomic.Int32       // len(queues): 0 means the feed may skip staging

	pumpMu     sync.Mutex
	pumpClosed bool
	pumps      sync.WaitGroup
}

// send publishes a feed message on topic. With persistent sessions around it
// is staged, so that the ACL hook can queue it for them.
func (s *Server) send(topic string, msg []byte, retain bool) {
	if s.persist.count.Load() == 0 {
		_ = s.broker.Publish(topic, msg, retain, 1)
		return
	}
	s.persist.staged.Store(topic, msg)
	_ = s.broker.Publish(topic, msg, retain, 1)
	s.persist.staged.Delete(topic)
}

func (s *Server) queueOf(id string) *pqueue {
	s.persist.mu.Lock()
	defer s.persist.mu.Unlock()
	return s.persist.queues[id]
}

// openQueue makes sure the persistent session id has a queue.
func (s *Server) openQueue(id string) *pqueue {
	p := &s.persist
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queues[id]
	if q == nil {
		q = &pqueue{id: id}
		p.queues[id] = q
		p.count.Store(int32(len(p.queues)))
	}
	return q
}

// dropQueue forgets the session id's queue, with what it holds.
func (s *Server) dropQueue(id string) {
	p := &s.persist
	p.mu.Lock()
	q := p.queues[id]
	delete(p.queues, id)
	p.count.Store(int32(len(p.queues)))
	p.mu.Unlock()
	if q != nil {
		q.mu.Lock()
		s.stats.queued.Add(-int64(len(q.items)))
		q.items = nil
		q.mu.Unlock()
	}
}

// admit decides, for a feed message on topic, whether mochi delivers it to
// the persistent session's client cl now (true) or the session queues it
// (false).
func (s *Server) admit(cl *mqtt.Client, topic string, payload []byte) bool {
	q := s.queueOf(cl.ID)
	if q == nil {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	room := !cl.Closed() && cl.State.Inflight.Len() < s.opts.MaxInflight
	if room && len(q.items) == 0 {
		return true
	}
	if len(q.items) >= s.opts.MaxQueued {
		s.stats.dropped.Add(1)
		return false
	}
	q.items = append(q.items, queued{topic: topic, payload: payload, at: time.Now()})
	s.stats.queued.Add(1)
	if room {
		s.startPumpLocked(q)
	}
	return false
}

// wakeQueue sends what the session id has queued, if it can take more. It is
// called on resume and after every PUBACK.
func (s *Server) wakeQueue(id string) {
	if q := s.queueOf(id); q != nil {
		q.mu.Lock()
		s.startPumpLocked(q)
		q.mu.Unlock()
	}
}

// startPumpLocked starts sending q unless it is being sent or empty. Call with q.mu held.
func (s *Server) startPumpLocked(q *pqueue) {
	if q.pumping || len(q.items) == 0 {
		return
	}
	p := &s.persist
	p.pumpMu.Lock()
	defer p.pumpMu.Unlock()
	if p.pumpClosed {
		return
	}
	q.pumping = true
	p.pumps.Add(1)
	go func() {
		defer p.pumps.Done()
		s.pump(q)
	}()
}

// pump sends q's messages, oldest first, while the session's client is
// connected and below its in-flight limit.
func (s *Server) pump(q *pqueue) {
	for {
		q.mu.Lock()
		cl, ok := s.broker.Clients.Get(q.id)
		if !ok || cl.Closed() || len(q.items) == 0 || cl.State.Inflight.Len() >= s.opts.MaxInflight {
			q.pumping = false
			q.mu.Unlock()
			return
		}
		it := q.items[0]
		q.items[0] = queued{}
		q.items = q.items[1:]
		s.stats.queued.Add(-1)
		q.mu.Unlock()
		if time.Since(it.at) > queueExpiry {
			s.stats.dropped.Add(1)
			continue
		}
		s.deliver(cl, it)
	}
}

// deliver sends a queued message to cl as mochi sends a QoS 1 message: in
// flight until its PUBACK, resent when the session resumes.
func (s *Server) deliver(cl *mqtt.Client, it queued) {
	id, err := cl.NextPacketID()
	if err != nil {
		s.stats.dropped.Add(1)
		return
	}
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Publish, Qos: 1},
		TopicName:       it.topic,
		Payload:         it.payload,
		PacketID:        uint16(id),
		Created:         it.at.Unix(),
		ProtocolVersion: cl.Properties.ProtocolVersion,
	}
	if cl.State.Inflight.Set(pk) {
		atomic.AddInt64(&s.broker.Info.Inflight, 1)
	}
	// A failed write leaves the message in flight: it is resent when the
	// session resumes.
	_ = cl.WritePacket(pk)
}

// closePumps stops new pumps and waits for the running ones.
func (s *Server) closePumps() {
	p := &s.persist
	p.pumpMu.Lock()
	p.pumpClosed = true
	p.pumpMu.Unlock()
	p.pumps.Wait()
}

// skipLowPacketIDs moves a new client's packet ids to firstServerPacketID.
func skipLowPacketIDs(cl *mqtt.Client) {
	for {
		if id, err := cl.NextPacketID(); err != nil || id >= firstServerPacketID-1 {
			return
		}
	}
}
