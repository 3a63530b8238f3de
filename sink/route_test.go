package sink

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestRouteMsg(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("x", 3600))
	tests := []struct {
		name       string
		streamKind string
		id         string
		scope      string
		wantSubj   string
		wantHeader nats.Header
	}{
		{
			name: "fixture", streamKind: "fixture", id: "F1", scope: "read:stream_events",
			wantSubj: "dc.prod.basketball.fixture.F1.events",
			wantHeader: nats.Header{
				HeaderTopic: {"s/b/x/F1/r/e"}, HeaderScope: {"read:stream_events"}, HeaderSport: {"basketball"},
				HeaderFixtureID: {"F1"}, HeaderReceivedAt: {"2025-03-04T04:06:07.123456789Z"},
			},
		},
		{
			name: "venue escaped", streamKind: "venue", id: "V 1", scope: "read:stream_scoreboard",
			wantSubj: "dc.prod.basketball.venue.V%201.scoreboard",
			wantHeader: nats.Header{
				HeaderTopic: {"s/b/x/F1/r/e"}, HeaderScope: {"read:stream_scoreboard"}, HeaderSport: {"basketball"},
				HeaderVenueID: {"V 1"}, HeaderReceivedAt: {"2025-03-04T04:06:07.123456789Z"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRoute("dc.prod", "basketball", tt.streamKind, tt.id, tt.scope, "s/b/x/F1/r/e")
			if r.Subject != tt.wantSubj {
				t.Fatalf("Subject = %q, want %q", r.Subject, tt.wantSubj)
			}
			payload := []byte(`{"type":"event","data":{"seq":1}}`)
			m := r.Msg(payload, at)
			if m.Subject != tt.wantSubj {
				t.Fatalf("msg subject = %q, want %q", m.Subject, tt.wantSubj)
			}
			if !maps.EqualFunc(m.Header, tt.wantHeader, slices.Equal) {
				t.Fatalf("headers = %v, want %v", m.Header, tt.wantHeader)
			}
			if &m.Data[0] != &payload[0] || len(m.Data) != len(payload) {
				t.Fatal("payload was copied or cut")
			}
		})
	}
}

func TestRouteMsgReceivedAtTrimsZeros(t *testing.T) {
	r := NewRoute("dc", "basketball", "fixture", "F1", "read:stream_events", "t")
	m := r.Msg(nil, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	if got := m.Header.Get(HeaderReceivedAt); got != "2025-01-02T03:04:05Z" {
		t.Fatalf("received-at = %q", got)
	}
}

func TestRouteMsgHeadersIndependent(t *testing.T) {
	r := NewRoute("dc", "basketball", "fixture", "F1", "read:stream_events", "t")
	a := r.Msg(nil, time.Now())
	a.Header.Add(HeaderTopic, "extra")
	a.Header.Set(HeaderSport, "changed")
	b := r.Msg(nil, time.Now())
	if got := b.Header.Values(HeaderTopic); len(got) != 1 || got[0] != "t" {
		t.Fatalf("topic header of next message = %v", got)
	}
	if got := b.Header.Get(HeaderSport); got != "basketball" {
		t.Fatalf("sport header of next message = %q", got)
	}
}

func TestMsgID(t *testing.T) {
	sum := sha256.Sum256([]byte("dc.basketball.fixture.F1.events\x00payload"))
	want := hex.EncodeToString(sum[:16])
	if got := MsgID("dc.basketball.fixture.F1.events", []byte("payload")); got != want {
		t.Fatalf("MsgID = %q, want %q", got, want)
	}
	tests := []struct {
		name       string
		s1, s2     string
		p1, p2     string
		wantSameID bool
	}{
		{name: "same", s1: "a.b", p1: "x", s2: "a.b", p2: "x", wantSameID: true},
		{name: "other payload", s1: "a.b", p1: "x", s2: "a.b", p2: "y"},
		{name: "other subject", s1: "a.b", p1: "x", s2: "a.c", p2: "x"},
		{name: "boundary moved", s1: "a.b", p1: "cd", s2: "a.bc", p2: "d"},
		{name: "empty payload", s1: "a.b", p1: "", s2: "a.b", p2: "\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id1, id2 := MsgID(tt.s1, []byte(tt.p1)), MsgID(tt.s2, []byte(tt.p2))
			if len(id1) != 32 {
				t.Fatalf("len(MsgID) = %d", len(id1))
			}
			if (id1 == id2) != tt.wantSameID {
				t.Fatalf("MsgID %q vs %q, want same %v", id1, id2, tt.wantSameID)
			}
		})
	}
}

func BenchmarkRouteMsg(b *testing.B) {
	r := NewRoute("datacore", "basketball", "fixture", "3f1b0c2e-7a7d-11ee-b962-0242ac120002", "read:stream_events", "s/b/b1te1/3f1b0c2e/r/e")
	payload := make([]byte, 1024)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Msg(payload, now)
	}
}

func BenchmarkMsgID(b *testing.B) {
	subject := "datacore.basketball.fixture.3f1b0c2e-7a7d-11ee-b962-0242ac120002.events"
	payload := make([]byte, 1024)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		_ = MsgID(subject, payload)
	}
}

func BenchmarkEscapeToken(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = EscapeToken("3f1b0c2e-7a7d-11ee-b962-0242ac120002")
	}
}
