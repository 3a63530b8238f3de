package sim

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

// handshake dials url as a WebSocket and returns the HTTP status of the answer.
func handshake(t *testing.T, rawURL string, subprotocols ...string) int {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: waitLimit, Subprotocols: subprotocols}
	ws, resp, err := d.Dial(rawURL, nil)
	if ws != nil {
		ws.Close()
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	return resp.StatusCode
}

// dialSilent opens a WebSocket on url and sends nothing.
func dialSilent(t *testing.T, rawURL string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: waitLimit, Subprotocols: []string{"mqtt"}}
	ws, _, err := d.Dial(rawURL, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return ws
}

func TestHandshake(t *testing.T) {
	clk := newClock()
	s := startSim(t, Options{Now: clk.Now, GrantTTL: 2 * time.Second})

	tamper := func(u, key string) string {
		p, _ := url.Parse(u)
		q := p.Query()
		v := []byte(q.Get(key))
		if v[0] == 'a' {
			v[0] = 'b'
		} else {
			v[0] = 'a'
		}
		q.Set(key, string(v))
		p.RawQuery = q.Encode()
		return p.String()
	}
	tests := []struct {
		name   string
		url    func(u string) string
		before func() // before the grant
		setup  func() // after the grant
		proto  []string
		want   int
	}{
		{name: "valid", url: func(u string) string { return u }, want: http.StatusSwitchingProtocols},
		{name: "tampered signature", url: func(u string) string { return tamper(u, "X-Amz-Signature") }, want: http.StatusForbidden},
		{name: "tampered expiry", url: func(u string) string {
			return strings.Replace(u, "X-Amz-Expires=2", "X-Amz-Expires=9", 1)
		}, want: http.StatusForbidden},
		{name: "tampered token", url: func(u string) string { return tamper(u, "X-Amz-Security-Token") }, want: http.StatusForbidden},
		{name: "no query", url: func(u string) string { return strings.Split(u, "?")[0] }, want: http.StatusForbidden},
		{name: "no mqtt subprotocol", url: func(u string) string { return u }, proto: []string{}, want: http.StatusBadRequest},
		{name: "expired", url: func(u string) string { return u }, setup: func() { clk.Advance(2 * time.Second) }, want: http.StatusForbidden},
		{name: "refused for a while", url: func(u string) string { return u }, setup: func() { s.RefuseHandshakes(time.Minute) }, want: http.StatusForbidden},
		{name: "accepted after the refusal", url: func(u string) string { return u }, before: func() {
			s.RefuseHandshakes(time.Minute)
			clk.Advance(time.Minute)
		}, want: http.StatusSwitchingProtocols},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			g := grantOf(t, s, "F1", false, ScopeEvents)
			if tt.setup != nil {
				tt.setup()
			}
			proto := tt.proto
			if proto == nil {
				proto = []string{"mqtt"}
			}
			if got := handshake(t, tt.url(g.URL), proto...); got != tt.want {
				t.Fatalf("status = %d, want %d", got, tt.want)
			}
		})
	}
	// The server counts an accepted upgrade after answering it.
	poll.Wait(t, waitLimit, "the handshakes counted", func() bool {
		st := s.Stats()
		return st.HandshakesRefused >= 6 && st.HandshakesOK >= 2
	})
}

func TestFeedDelivers(t *testing.T) {
	tests := []struct {
		name string
		qos  byte
	}{
		{name: "qos 1", qos: 1},
		{name: "qos 0", qos: 0},
		{name: "qos 2 granted as 1", qos: 2},
	}
	s := startSim(t, Options{Feed: Feed{Rate: 200}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := grantOf(t, s, "F1", false, ScopeEvents, ScopeStatus, ScopePlayByPlay)
			c := mustDial(t, g.URL, g.ClientID)
			codes := c.subscribe(t, tt.qos, topicsOf(g)...)
			for topic, code := range codes {
				if want := min(tt.qos, 1); code != want {
					t.Fatalf("SUBACK for %s = %d, want %d", topic, code, want)
				}
			}
			last := map[string]uint64{}
			for n := 0; n < 30; n++ {
				m := c.next(t)
				if want := min(tt.qos, 1); m.qos != want {
					t.Fatalf("message QoS = %d, want %d", m.qos, want)
				}
				msg, d := decode(t, m.payload)
				if msg.FixtureID != "F1" || msg.Type == "" || msg.Timestamp.IsZero() || d.SentAt == 0 {
					t.Fatalf("message %s", m.payload)
				}
				if prev, ok := last[m.topic]; ok && d.Seq != prev+1 {
					t.Fatalf("seq on %s went %d -> %d", m.topic, prev, d.Seq)
				}
				last[m.topic] = d.Seq
			}
			if len(last) < 2 {
				t.Fatalf("messages on %d topics only", len(last))
			}
			for _, tp := range g.Topics {
				if got := s.LastSeq("fixture", "F1", tp.Scope); got < last[tp.Topic] {
					t.Fatalf("LastSeq(%s) = %d, below the seen %d", tp.Scope, got, last[tp.Topic])
				}
			}
		})
	}
}

func TestVenueScoreboard(t *testing.T) {
	s := startSim(t, Options{Feed: Feed{ScoreboardRate: 100}})
	g := grantOf(t, s, "V1", true, ScopeScoreboard)
	c := mustDial(t, g.URL, g.ClientID)
	c.subscribe(t, 1, topicsOf(g)...)
	msg, d := decode(t, c.next(t).payload)
	if msg.Type != "scoreboard" || msg.VenueID != "V1" || d.Seq == 0 {
		t.Fatalf("message %+v %+v", msg, d)
	}
	if s.LastSeq("venue", "V1", ScopeScoreboard) == 0 {
		t.Fatal("LastSeq = 0")
	}
}

func TestConnectRules(t *testing.T) {
	s := startSim(t, Options{})
	t.Run("wrong client id refused", func(t *testing.T) {
		g := grantOf(t, s, "F1", false, ScopeEvents)
		if _, err := dial(t, g.URL, "someone-else"); err == nil {
			t.Fatal("connected with a client id the grant does not name")
		}
		if s.Stats().ConnectsRefused == 0 {
			t.Fatal("ConnectsRefused = 0")
		}
	})
	t.Run("client id of another grant refused", func(t *testing.T) {
		a := grantOf(t, s, "F1", false, ScopeEvents)
		b := grantOf(t, s, "F1", false, ScopeEvents)
		if _, err := dial(t, a.URL, b.ClientID); err == nil {
			t.Fatal("connected with another grant's client id")
		}
	})
	t.Run("topic of another grant refused", func(t *testing.T) {
		a := grantOf(t, s, "F1", false, ScopeEvents)
		b := grantOf(t, s, "F2", false, ScopeEvents)
		c := mustDial(t, a.URL, a.ClientID)
		codes := c.subscribe(t, 1, b.Topics[0].Topic, "#")
		for topic, code := range codes {
			if code != 0x80 {
				t.Fatalf("SUBACK for %s = %#x, want 0x80", topic, code)
			}
		}
	})
	t.Run("nine topics in one SUBSCRIBE disconnect", func(t *testing.T) {
		g := grantOf(t, s, "F1", false, ReadScopes...)
		c := mustDial(t, g.URL, g.ClientID)
		topics := topicsOf(g)[:9]
		filters := map[string]byte{}
		for _, tp := range topics {
			filters[tp] = 1
		}
		c.SubscribeMultiple(filters, nil)
		c.waitLost(t)
	})
	t.Run("eight topics in one SUBSCRIBE accepted", func(t *testing.T) {
		g := grantOf(t, s, "F1", false, ReadScopes...)
		c := mustDial(t, g.URL, g.ClientID)
		for _, code := range c.subscribe(t, 1, topicsOf(g)[:8]...) {
			if code != 1 {
				t.Fatalf("SUBACK = %#x", code)
			}
		}
		c.subscribe(t, 1, topicsOf(g)[8:]...)
	})
}

func TestDuplicateClientIDKicksFirst(t *testing.T) {
	s := startSim(t, Options{})
	g := grantOf(t, s, "F1", false, ScopeEvents)
	first := mustDial(t, g.URL, g.ClientID)
	second := mustDial(t, g.URL, g.ClientID)
	first.waitLost(t)
	if !second.IsConnectionOpen() {
		t.Fatal("second connection closed")
	}
	if s.Stats().Kicks != 1 {
		t.Fatalf("Kicks = %d, want 1", s.Stats().Kicks)
	}
}

func TestDisconnects(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		act  func(t *testing.T, s *Server)
	}{
		{name: "connection lifetime", opts: Options{ConnLifetime: 300 * time.Millisecond}},
		{name: "DisconnectAll", act: func(t *testing.T, s *Server) {
			if n := s.DisconnectAll(); n != 1 {
				t.Errorf("DisconnectAll closed %d connections, want 1", n)
			}
		}},
		{name: "DisconnectEvery", act: func(_ *testing.T, s *Server) { s.SetFaults(Faults{DisconnectEvery: 100 * time.Millisecond}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSim(t, tt.opts)
			g := grantOf(t, s, "F1", false, ScopeEvents)
			c := mustDial(t, g.URL, g.ClientID)
			poll.Wait(t, waitLimit, "the session", func() bool { return s.Stats().Connected == 1 })
			if tt.act != nil {
				tt.act(t, s)
			}
			c.waitLost(t)
			poll.Wait(t, waitLimit, "the session to end", func() bool { return s.Stats().Connected == 0 })
			if s.Stats().Disconnects == 0 {
				t.Fatal("Disconnects = 0")
			}
		})
	}
}

func TestReconnectWithExpiredURLRefused(t *testing.T) {
	clk := newClock()
	s := startSim(t, Options{Now: clk.Now, GrantTTL: time.Second})
	g := grantOf(t, s, "F1", false, ScopeEvents)
	c := mustDial(t, g.URL, g.ClientID)
	clk.Advance(time.Second)
	if !c.IsConnectionOpen() {
		t.Fatal("an open connection must outlive its URL")
	}
	c.Disconnect(0)
	if _, err := dial(t, g.URL, g.ClientID); err == nil {
		t.Fatal("reconnected with an expired URL")
	}
}
