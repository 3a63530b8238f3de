package sim

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

func TestGameEndsAndCatchup(t *testing.T) {
	s := startSim(t, Options{Feed: Feed{Rate: 200, GameLength: 300 * time.Millisecond}})
	watch := grantOf(t, s, "F1", false, ScopeStatus)
	w := mustDial(t, watch.URL, watch.ClientID)
	w.subscribe(t, 1, topicsOf(watch)...)
	var statuses []string
	for len(statuses) == 0 || statuses[len(statuses)-1] != StatusConfirmed {
		_, d := decode(t, w.next(t).payload)
		if d.Status == nil {
			t.Fatal("status message without data.status")
		}
		if n := len(statuses); n == 0 || statuses[n-1] != d.Status.Fixture {
			statuses = append(statuses, d.Status.Fixture)
		}
	}
	want := []string{StatusInProgress, StatusFinished, StatusConfirmed}
	if len(statuses) != 3 || statuses[0] != want[0] || statuses[1] != want[1] {
		t.Fatalf("statuses = %v, want %v", statuses, want)
	}

	// The game is over: the catchup topic must still give the last persons message.
	last := s.LastSeq("fixture", "F1", ScopePersons)
	if last == 0 {
		t.Fatal("no persons message was published")
	}
	if got := s.LastSeq("fixture", "F1", ScopePersonsCatchup); got != last {
		t.Fatalf("LastSeq(catchup) = %d, want %d", got, last)
	}
	g := grantOf(t, s, "F1", false, ScopePersonsCatchup)
	c := mustDial(t, g.URL, g.ClientID)
	c.subscribe(t, 1, topicsOf(g)...)
	msg, d := decode(t, c.next(t).payload)
	if msg.Type != "persons" || d.Seq != last {
		t.Fatalf("catchup gave %s seq %d, want persons seq %d", msg.Type, d.Seq, last)
	}
}

func TestPayloadShape(t *testing.T) {
	tests := []struct {
		name     string
		feed     Feed
		wantSize int
	}{
		{name: "plain", feed: Feed{Rate: 100}},
		{name: "compressed", feed: Feed{Rate: 100, Compress: true}},
		{name: "padded", feed: Feed{Rate: 100, PayloadSize: 2000}, wantSize: 2000},
		{name: "padded and compressed", feed: Feed{Rate: 100, PayloadSize: 2000, Compress: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSim(t, Options{Feed: tt.feed})
			g := grantOf(t, s, "F1", false, ScopeEvents)
			c := mustDial(t, g.URL, g.ClientID)
			c.subscribe(t, 1, topicsOf(g)...)
			payload := c.next(t).payload
			msg, d := decode(t, payload)
			if tt.feed.Compress {
				if msg.CompressedData == nil || msg.Data != nil {
					t.Fatalf("message %s", payload)
				}
				zr, err := zlib.NewReader(bytes.NewReader(msg.CompressedData))
				if err != nil {
					t.Fatal(err)
				}
				raw, err := io.ReadAll(zr)
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(raw, &d); err != nil {
					t.Fatalf("inflated data: %v", err)
				}
			}
			if d.Seq == 0 || d.SentAt == 0 {
				t.Fatalf("data = %+v", d)
			}
			if tt.wantSize > 0 && (len(payload) < tt.wantSize*9/10 || len(payload) > tt.wantSize*11/10) {
				t.Fatalf("payload is %d bytes, want about %d", len(payload), tt.wantSize)
			}
		})
	}
}

func TestFloodIsPaced(t *testing.T) {
	tests := []struct {
		name string
		qos  byte
	}{
		{name: "qos 1 by acknowledgements", qos: 1},
		{name: "qos 0 by writes", qos: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSim(t, Options{Feed: Feed{Flood: true}, MaxInflight: 20})
			g := grantOf(t, s, "F1", false, ScopeEvents, ScopeStatus)
			c := mustDial(t, g.URL, g.ClientID)
			c.subscribe(t, tt.qos, topicsOf(g)...)
			last := map[string]uint64{}
			for n := 0; n < 3000; n++ {
				m := c.next(t)
				_, d := decode(t, m.payload)
				if prev, ok := last[m.topic]; ok && d.Seq != prev+1 {
					t.Fatalf("seq on %s went %d -> %d: a message was dropped", m.topic, prev, d.Seq)
				}
				last[m.topic] = d.Seq
			}
			if st := s.Stats(); st.Dropped != 0 {
				t.Fatalf("Dropped = %d", st.Dropped)
			}
		})
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		s, err := Start(t.Context(), Options{Fixtures: []string{"F1"}, Venues: []string{"V1"}, Feed: Feed{Rate: 100}, Faults: Faults{DisconnectEvery: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		g := grantOf(t, s, "F1", false, ScopeEvents)
		grantOf(t, s, "V1", true, ScopeScoreboard)
		c := mustDial(t, g.URL, g.ClientID)
		c.subscribe(t, 1, topicsOf(g)...)
		c.next(t)
		// A connection that never sends CONNECT must not hold Close up.
		silent := dialSilent(t, g.URL)
		defer silent.Close()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		c.waitLost(t)
		c.Disconnect(0)
	}()
	http.DefaultClient.CloseIdleConnections()
	poll.Wait(t, waitLimit, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}
