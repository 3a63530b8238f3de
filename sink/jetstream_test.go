package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func newJS(t *testing.T, nc *nats.Conn, o JetStreamOptions) *JetStream {
	t.Helper()
	p, err := NewJetStream(nc, o)
	if err != nil {
		t.Fatalf("NewJetStream: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

func ensure(t *testing.T, js jetstream.JetStream, name, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := EnsureStream(ctx, js, name, prefix); err != nil {
		t.Fatalf("EnsureStream: %v", err)
	}
}

// streamPayloads returns every stored message of stream name, in order.
func streamMsgs(t *testing.T, js jetstream.JetStream, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get msg %d: %v", seq, err)
		}
		out = append(out, m)
	}
	if uint64(len(out)) != info.State.Msgs {
		t.Fatalf("read %d messages, stream says %d", len(out), info.State.Msgs)
	}
	return out
}

func TestJetStreamPublishAndDedup(t *testing.T) {
	s, _ := runServer(t, nil)
	nc := connect(t, s, nil)
	p := newJS(t, nc, JetStreamOptions{})
	ensure(t, p.JetStream(), "DC", "dc")

	r := NewRoute("dc", "basketball", "venue", "V1", "read:stream_scoreboard", "s/b/v/V1/sb")
	payload := []byte(`{"type":"scoreboard","venueId":"V1","data":{"seq":7}}`)
	at := time.Date(2025, 5, 6, 7, 8, 9, 10, time.UTC)
	dones := newDoneSink(2)
	for range 2 {
		if err := p.Publish(context.Background(), r.Msg(payload, at), dones.done); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	for _, err := range dones.wait(t, 2, 10*time.Second) {
		if err != nil {
			t.Fatalf("done(%v)", err)
		}
	}
	msgs := streamMsgs(t, p.JetStream(), "DC")
	if len(msgs) != 1 {
		t.Fatalf("stream holds %d messages, want 1 (duplicate dropped)", len(msgs))
	}
	m := msgs[0]
	if m.Subject != r.Subject || !bytes.Equal(m.Data, payload) {
		t.Fatalf("stored %q %q", m.Subject, m.Data)
	}
	want := map[string]string{
		HeaderTopic:           "s/b/v/V1/sb",
		HeaderScope:           "read:stream_scoreboard",
		HeaderSport:           "basketball",
		HeaderVenueID:         "V1",
		HeaderReceivedAt:      "2025-05-06T07:08:09.00000001Z",
		jetstream.MsgIDHeader: MsgID(r.Subject, payload),
	}
	for k, v := range want {
		if got := m.Header.Values(k); len(got) != 1 || got[0] != v {
			t.Fatalf("header %s = %v, want %q", k, got, v)
		}
	}
	if st := p.Stats(); st.Published != 2 || st.Pending != 0 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestJetStreamServerRestart(t *testing.T) {
	s, opts := runServer(t, nil)
	nc := connect(t, s, nil)
	p := newJS(t, nc, JetStreamOptions{MaxPending: 64, AckTimeout: time.Second, RetryBackoff: 10 * time.Millisecond})
	ensure(t, p.JetStream(), "DC", "dc")
	r := NewRoute("dc", "basketball", "fixture", "F1", "read:stream_events", "t")

	const up, inFlight, down = 5, 10, 20
	dones := newDoneSink(up + inFlight + down + 1)
	publish := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			if err := p.Publish(context.Background(), r.Msg(fmt.Appendf(nil, `{"seq":%d}`, i), time.Now()), dones.done); err != nil {
				t.Fatalf("Publish %d: %v", i, err)
			}
		}
	}
	publish(0, up)
	for _, err := range dones.wait(t, up, 10*time.Second) {
		if err != nil {
			t.Fatalf("done(%v) while up", err)
		}
	}
	publish(up, inFlight) // acks may be lost in the shutdown
	stopServer(s)
	waitStatus(t, nc, nats.RECONNECTING)
	publish(up+inFlight, down)
	restartServer(t, opts)

	for _, err := range dones.wait(t, inFlight+down, 20*time.Second) {
		if err != nil {
			t.Fatalf("done(%v) after restart", err)
		}
	}
	// The server still knows the ids it stored before the restart: publishing an old
	// message again stores nothing.
	publish(0, 1)
	if err := dones.wait(t, 1, 10*time.Second)[0]; err != nil {
		t.Fatalf("done(%v) for a republished message", err)
	}
	msgs := streamMsgs(t, p.JetStream(), "DC")
	var seen []string
	for _, m := range msgs {
		seen = append(seen, string(m.Data))
	}
	slices.Sort(seen)
	var want []string
	for i := range up + inFlight + down {
		want = append(want, fmt.Sprintf(`{"seq":%d}`, i))
	}
	slices.Sort(want)
	if !slices.Equal(seen, want) {
		t.Fatalf("stream holds %d messages %v, want each of %d exactly once", len(seen), seen, len(want))
	}
	t.Logf("stats %+v", p.Stats())
	if st := p.Stats(); st.Published != up+inFlight+down+1 || st.Pending != 0 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestJetStreamBackpressureAndClose(t *testing.T) {
	s, _ := runServer(t, nil)
	nc := connect(t, s, nil)
	const maxPending = 3
	p, err := NewJetStream(nc, JetStreamOptions{MaxPending: maxPending})
	if err != nil {
		t.Fatal(err)
	}
	ensure(t, p.JetStream(), "DC", "dc")
	stopServer(s)
	waitStatus(t, nc, nats.RECONNECTING)

	dones := newDoneSink(maxPending + 2)
	for i := range maxPending {
		if err := p.Publish(context.Background(), &nats.Msg{Subject: "dc.x", Data: []byte{byte(i)}}, dones.done); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Publish(ctx, &nats.Msg{Subject: "dc.x", Data: []byte("over")}, dones.done); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish over the budget = %v, want DeadlineExceeded", err)
	}
	if st := p.Stats(); st.Pending != maxPending {
		t.Fatalf("pending %d, want %d", st.Pending, maxPending)
	}

	blocked := make(chan error, 1)
	go func() {
		blocked <- p.Publish(context.Background(), &nats.Msg{Subject: "dc.x", Data: []byte("blocked")}, dones.done)
	}()

	cctx, ccancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer ccancel()
	err = p.Close(cctx)
	if !errors.Is(err, ErrAbandoned) || !strings.Contains(err.Error(), "3 messages") {
		t.Fatalf("Close = %v, want ErrAbandoned for 3 messages", err)
	}
	if err := <-blocked; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Publish after Close = %v, want ErrClosed", err)
	}
	for _, err := range dones.wait(t, maxPending, time.Second) {
		if !errors.Is(err, ErrAbandoned) {
			t.Fatalf("done(%v), want ErrAbandoned", err)
		}
	}
	if len(dones) != 0 {
		t.Fatalf("%d extra done callbacks", len(dones))
	}
	if st := p.Stats(); st.Pending != 0 || st.Dropped != maxPending {
		t.Fatalf("stats %+v", st)
	}
	if err := p.Publish(context.Background(), &nats.Msg{Subject: "dc.x"}, dones.done); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
}

func TestJetStreamRetriesUntilStreamExists(t *testing.T) {
	s, _ := runServer(t, nil)
	nc := connect(t, s, nil)
	p := newJS(t, nc, JetStreamOptions{RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond})
	dones := newDoneSink(1)
	if err := p.Publish(context.Background(), &nats.Msg{Subject: "late.x", Data: []byte("1")}, dones.done); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return p.Stats().Retries > 0 }, "a retry")
	ensure(t, p.JetStream(), "LATE", "late")
	if err := dones.wait(t, 1, 10*time.Second)[0]; err != nil {
		t.Fatalf("done(%v)", err)
	}
	if n := len(streamMsgs(t, p.JetStream(), "LATE")); n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
}

func TestJetStreamPermanentError(t *testing.T) {
	s, _ := runServer(t, nil)
	nc := connect(t, s, nil)
	p := newJS(t, nc, JetStreamOptions{})
	ctx := context.Background()
	if _, err := p.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: "SMALL", Subjects: []string{"small.>"}, MaxMsgSize: 8}); err != nil {
		t.Fatal(err)
	}
	dones := newDoneSink(1)
	if err := p.Publish(ctx, &nats.Msg{Subject: "small.x", Data: bytes.Repeat([]byte("x"), 64)}, dones.done); err != nil {
		t.Fatal(err)
	}
	err := dones.wait(t, 1, 10*time.Second)[0]
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 400 {
		t.Fatalf("done(%v), want a 400 API error", err)
	}
	if st := p.Stats(); st.Dropped != 1 || st.Retries != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestEnsureStream(t *testing.T) {
	tests := []struct {
		name         string
		existing     *jetstream.StreamConfig
		prefix       string
		wantSubjects []string
		wantStorage  jetstream.StorageType
		wantErr      string
	}{
		{name: "create", prefix: "dc", wantSubjects: []string{"dc.>"}, wantStorage: jetstream.FileStorage},
		{name: "create multi-token prefix", prefix: "acme.dc", wantSubjects: []string{"acme.dc.>"}, wantStorage: jetstream.FileStorage},
		{
			name:         "add subject to existing",
			existing:     &jetstream.StreamConfig{Name: "DC", Subjects: []string{"other.>"}, Storage: jetstream.MemoryStorage},
			prefix:       "dc",
			wantSubjects: []string{"other.>", "dc.>"},
			wantStorage:  jetstream.MemoryStorage,
		},
		{
			name:         "already covered",
			existing:     &jetstream.StreamConfig{Name: "DC", Subjects: []string{"acme.>"}},
			prefix:       "acme.dc",
			wantSubjects: []string{"acme.>"},
			wantStorage:  jetstream.FileStorage,
		},
		{
			name:     "overlaps another stream",
			existing: &jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"dc.>"}},
			prefix:   "dc",
			wantErr:  `create stream "DC"`,
		},
		{name: "invalid prefix", prefix: "dc.*", wantErr: "invalid subject prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := runServer(t, nil)
			nc := connect(t, s, nil)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if tt.existing != nil {
				if _, err := js.CreateStream(ctx, *tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			err = EnsureStream(ctx, js, "DC", tt.prefix)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("EnsureStream = %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("EnsureStream: %v", err)
			}
			if err := EnsureStream(ctx, js, "DC", tt.prefix); err != nil {
				t.Fatalf("second EnsureStream: %v", err)
			}
			st, err := js.Stream(ctx, "DC")
			if err != nil {
				t.Fatal(err)
			}
			cfg := st.CachedInfo().Config
			if !slices.Equal(cfg.Subjects, tt.wantSubjects) || cfg.Storage != tt.wantStorage {
				t.Fatalf("subjects %v storage %v, want %v %v", cfg.Subjects, cfg.Storage, tt.wantSubjects, tt.wantStorage)
			}
			if tt.existing == nil && cfg.Duplicates != DefaultDuplicateWindow {
				t.Fatalf("duplicates window %v", cfg.Duplicates)
			}
		})
	}
}

func TestNewJetStreamOptions(t *testing.T) {
	s, _ := runServer(t, func(o *server.Options) { o.JetStream = false })
	nc := connect(t, s, nil)
	if _, err := NewJetStream(nc, JetStreamOptions{MaxPending: -1}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("NewJetStream with negative MaxPending = %v", err)
	}
}
