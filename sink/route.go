package sink

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Header names set on every published message.
const (
	// HeaderTopic carries the MQTT topic the message arrived on.
	HeaderTopic = "Datacore-Topic"
	// HeaderScope carries the topic's scope, e.g. "read:stream_events".
	HeaderScope = "Datacore-Scope"
	// HeaderSport carries the sport.
	HeaderSport = "Datacore-Sport"
	// HeaderFixtureID carries the fixture ID on fixture messages.
	HeaderFixtureID = "Datacore-Fixture-Id"
	// HeaderVenueID carries the venue ID on venue messages.
	HeaderVenueID = "Datacore-Venue-Id"
	// HeaderReceivedAt carries the time the bridge received the message, RFC 3339 in
	// UTC with nanoseconds (time.RFC3339Nano).
	HeaderReceivedAt = "Datacore-Received-At"
)

// headerHint sizes each message's header map: the six Datacore headers plus room for
// Nats-Msg-Id without growing.
const headerHint = 8

// Route is everything about a (stream, topic) pair that does not change per message:
// the subject and the static header values. Build it once per grant with NewRoute; Msg
// is then cheap.
type Route struct {
	// Subject is <prefix>.<sport>.<fixture|venue>.<id>.<kind>, tokens escaped.
	Subject string
	// Kind is the unescaped kind token, KindFromScope(scope).
	Kind string

	idHeader string
	topic    []string
	scope    []string
	sport    []string
	id       []string
}

// NewRoute precomputes the route of one topic of one stream. streamKind is "fixture" or
// "venue": "venue" sets Datacore-Venue-Id, anything else Datacore-Fixture-Id. prefix must
// have passed ValidatePrefix.
func NewRoute(prefix, sport, streamKind, id, scope, topic string) *Route {
	kind := KindFromScope(scope)
	idHeader := HeaderFixtureID
	if streamKind == "venue" {
		idHeader = HeaderVenueID
	}
	return &Route{
		Subject:  Subject(prefix, sport, streamKind, id, kind),
		Kind:     kind,
		idHeader: idHeader,
		topic:    one(topic),
		scope:    one(scope),
		sport:    one(sport),
		id:       one(id),
	}
}

// one returns a one-element slice with no spare capacity, so that nats.Header.Add on a
// message reallocates instead of writing into the slice shared by every message.
func one(s string) []string {
	v := []string{s}
	return v[:1:1]
}

// msgBox puts a message and its per-message header value in one allocation.
type msgBox struct {
	msg nats.Msg
	at  [1]string
}

// Msg builds the message for payload received at receivedAt: the route's subject and
// the Datacore-* headers. payload is referenced, not copied: it must not change until
// the publish has settled. The header value slices are shared between messages of the
// route: treat them as read-only (Set and Add on the header are fine).
func (r *Route) Msg(payload []byte, receivedAt time.Time) *nats.Msg {
	var buf [48]byte
	b := &msgBox{}
	b.at[0] = string(receivedAt.UTC().AppendFormat(buf[:0], time.RFC3339Nano))
	h := make(nats.Header, headerHint)
	h[HeaderTopic] = r.topic
	h[HeaderScope] = r.scope
	h[HeaderSport] = r.sport
	h[r.idHeader] = r.id
	h[HeaderReceivedAt] = b.at[:1:1]
	b.msg.Subject = r.Subject
	b.msg.Header = h
	b.msg.Data = payload
	return &b.msg
}

// hasher is a pooled SHA-256 state with scratch space.
type hasher struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

var hashers = sync.Pool{New: func() any { return &hasher{h: sha256.New(), buf: make([]byte, 0, 128)} }}

// MsgID returns the message's deduplication id, used as Nats-Msg-Id with JetStream: the
// first 16 bytes of SHA-256(subject, 0x00, payload) as 32 lower-case hex digits. It
// depends only on its arguments, so it is the same in every process and after restarts.
func MsgID(subject string, payload []byte) string {
	hs := hashers.Get().(*hasher)
	hs.h.Reset()
	hs.buf = append(append(hs.buf[:0], subject...), 0)
	hs.h.Write(hs.buf)
	hs.h.Write(payload)
	sum := hs.h.Sum(hs.sum[:0])
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	if cap(hs.buf) <= 1024 {
		hashers.Put(hs)
	}
	return string(out[:])
}
