package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

func newJS(t testing.TB, nc *nats.Conn, o JetStreamOptions) *JetStream {
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

func ensure(t testing.TB, js jetstream.JetStream, name, prefix string) {
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
	s := natstest.Run(t)
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
	s := natstest.Run(t)
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
	s.Stop()
	waitStatus(t, nc, nats.RECONNECTING)
	publish(up+inFlight, down)
	natstest.Rerun(t, s)

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
	s := natstest.Run(t)
	nc := connect(t, s, nil)
	const maxPending = 3
	p, err := NewJetStream(nc, JetStreamOptions{MaxPending: maxPending})
	if err != nil {
		t.Fatal(err)
	}
	ensure(t, p.JetStream(), "DC", "dc")
	s.Stop()
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
	s := natstest.Run(t)
	nc := connect(t, s, nil)
	var onRetry atomic.Uint64
	p := newJS(t, nc, JetStreamOptions{RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond,
		OnRetry: func() { onRetry.Add(1) }})
	dones := newDoneSink(1)
	if err := p.Publish(context.Background(), &nats.Msg{Subject: "late.x", Data: []byte("1")}, dones.done); err != nil {
		t.Fatal(err)
	}
	poll.Wait(t, waitLimit, "a retry", func() bool { return p.Stats().Retries > 0 })
	ensure(t, p.JetStream(), "LATE", "late")
	if err := dones.wait(t, 1, 10*time.Second)[0]; err != nil {
		t.Fatalf("done(%v)", err)
	}
	// Every retry is reported through OnRetry (the bridge's publish_retries_total).
	if st := p.Stats(); st.Retries == 0 || onRetry.Load() != st.Retries {
		t.Fatalf("OnRetry called %d times, Stats().Retries %d: want equal and above 0", onRetry.Load(), st.Retries)
	}
	if n := len(streamMsgs(t, p.JetStream(), "LATE")); n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
}

func TestJetStreamPermanentError(t *testing.T) {
	s := natstest.Run(t)
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
			s := natstest.Run(t)
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
			if tt.existing == nil && !strings.Contains(cfg.Description, tt.prefix+".>") {
				t.Fatalf("description %q does not say what the stream holds", cfg.Description)
			}
			if tt.existing != nil && cfg.Description != tt.existing.Description {
				t.Fatalf("description of an existing stream changed to %q", cfg.Description)
			}
		})
	}
}

func TestNewJetStreamOptions(t *testing.T) {
	s := natstest.Run(t, func(o *server.Options) { o.JetStream = false })
	nc := connect(t, s, nil)
	if _, err := NewJetStream(nc, JetStreamOptions{MaxPending: -1}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("NewJetStream with negative MaxPending = %v", err)
	}
}

// fakeStream answers JetStream publishes on subject with the replies given, one per
// attempt ("" = no reply at all; once they run out, a positive acknowledgement), and
// records each attempt's Nats-Msg-Id.
type fakeStream struct {
	mu      sync.Mutex
	replies []string
	ids     []string
}

func (f *fakeStream) serve(t *testing.T, s *natstest.Server, subject string) {
	t.Helper()
	nc := connect(t, s, nil)
	_, err := nc.Subscribe(subject, func(m *nats.Msg) {
		f.mu.Lock()
		n := len(f.ids)
		f.ids = append(f.ids, m.Header.Get(jetstream.MsgIDHeader))
		reply := `{"stream":"FAKE","seq":1}`
		if n < len(f.replies) {
			reply = f.replies[n]
		}
		f.mu.Unlock()
		if reply != "" {
			_ = m.Respond([]byte(reply))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeStream) attempts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ids)
}

func TestJetStreamAttemptOutcomes(t *testing.T) {
	const ok = `{"stream":"FAKE","seq":1}`
	tests := []struct {
		name        string
		replies     []string
		wantErr     bool // done gets an error
		wantRetries uint64
	}{
		{name: "acknowledged", replies: []string{ok}},
		{name: "ack timeout then acknowledged", replies: []string{"", ok}, wantRetries: 1},
		{name: "two ack timeouts", replies: []string{"", "", ok}, wantRetries: 2},
		{name: "server error then acknowledged", replies: []string{`{"error":{"code":503,"err_code":10008,"description":"unavailable"}}`, ok}, wantRetries: 1},
		{name: "bad request is final", replies: []string{`{"error":{"code":400,"err_code":10054,"description":"bad"}}`}, wantErr: true},
		{name: "invalid ack then acknowledged", replies: []string{`nonsense`, ok}, wantRetries: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := natstest.Run(t)
			f := &fakeStream{replies: tt.replies}
			f.serve(t, s, "fake.>")
			nc := connect(t, s, nil)
			p := newJS(t, nc, JetStreamOptions{AckTimeout: 100 * time.Millisecond, RetryBackoff: 5 * time.Millisecond})
			dones := newDoneSink(1)
			if err := p.Publish(context.Background(), &nats.Msg{Subject: "fake.x", Data: []byte("1")}, dones.done); err != nil {
				t.Fatal(err)
			}
			err := dones.wait(t, 1, 10*time.Second)[0]
			if (err != nil) != tt.wantErr {
				t.Fatalf("done(%v), want error %v", err, tt.wantErr)
			}
			ids := f.attempts()
			if len(ids) != int(tt.wantRetries)+1 {
				t.Fatalf("%d attempts, want %d", len(ids), tt.wantRetries+1)
			}
			for _, id := range ids {
				if id != MsgID("fake.x", []byte("1")) {
					t.Fatalf("attempts carried ids %q, want the message's MsgID each time", ids)
				}
			}
			st := p.Stats()
			wantPublished, wantDropped := uint64(1), uint64(0)
			if tt.wantErr {
				wantPublished, wantDropped = 0, 1
			}
			if st.Retries != tt.wantRetries || st.Errors != tt.wantRetries+wantDropped ||
				st.Published != wantPublished || st.Dropped != wantDropped || st.Pending != 0 {
				t.Fatalf("stats %+v", st)
			}
			if len(dones) != 0 {
				t.Fatalf("%d extra done callbacks", len(dones))
			}
		})
	}
}

// A message given again while still pending is published (and settled) twice.
func TestJetStreamSameMsgTwice(t *testing.T) {
	s := natstest.Run(t)
	f := &fakeStream{replies: []string{"", ""}}
	f.serve(t, s, "fake.>")
	nc := connect(t, s, nil)
	p := newJS(t, nc, JetStreamOptions{AckTimeout: 200 * time.Millisecond, RetryBackoff: 5 * time.Millisecond})
	msg := &nats.Msg{Subject: "fake.x", Data: []byte("1")}
	dones := newDoneSink(2)
	for range 2 {
		if err := p.Publish(context.Background(), msg, dones.done); err != nil {
			t.Fatal(err)
		}
	}
	for _, err := range dones.wait(t, 2, 10*time.Second) {
		if err != nil {
			t.Fatalf("done(%v)", err)
		}
	}
	if n := len(f.attempts()); n != 4 {
		t.Fatalf("%d attempts, want 4 (two timed out, two acknowledged)", n)
	}
	if st := p.Stats(); st.Published != 2 || st.Retries != 2 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Close abandons messages still waiting for their acknowledgement, and the
// acknowledgement timeouts that follow call nothing more.
func TestJetStreamCloseAbandonsUnacknowledged(t *testing.T) {
	s := natstest.Run(t)
	f := &fakeStream{replies: slices.Repeat([]string{""}, 100)}
	f.serve(t, s, "fake.>")
	nc := connect(t, s, nil)
	p, err := NewJetStream(nc, JetStreamOptions{AckTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	dones := newDoneSink(2 * n)
	for i := range n {
		if err := p.Publish(context.Background(), &nats.Msg{Subject: "fake.x", Data: []byte{byte(i)}}, dones.done); err != nil {
			t.Fatal(err)
		}
	}
	poll.Wait(t, waitLimit, "the first attempts", func() bool { return len(f.attempts()) == n })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, ErrAbandoned) || !strings.Contains(err.Error(), "5 messages") {
		t.Fatalf("Close = %v, want ErrAbandoned for 5 messages", err)
	}
	for _, err := range dones.wait(t, n, time.Second) {
		if !errors.Is(err, ErrAbandoned) {
			t.Fatalf("done(%v), want ErrAbandoned", err)
		}
	}
	// nats.go forgets them when their acknowledgement times out.
	poll.Wait(t, waitLimit, "nats.go to give up on the acknowledgements", func() bool { return p.JetStream().PublishAsyncPending() == 0 })
	if len(dones) != 0 {
		t.Fatalf("%d extra done callbacks", len(dones))
	}
	if st := p.Stats(); st.Pending != 0 || st.Dropped != n || st.Published != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Pending messages cost no goroutine each.
func TestJetStreamPendingWithoutGoroutines(t *testing.T) {
	s := natstest.Run(t)
	nc := connect(t, s, nil)
	const pending = 500
	p := newJS(t, nc, JetStreamOptions{MaxPending: pending})
	s.Stop()
	waitStatus(t, nc, nats.RECONNECTING)
	before := runtime.NumGoroutine()
	dones := newDoneSink(pending)
	for i := range pending {
		if err := p.Publish(context.Background(), &nats.Msg{Subject: "dc.x", Data: []byte(itoa(i))}, dones.done); err != nil {
			t.Fatal(err)
		}
	}
	if st := p.Stats(); st.Pending != pending {
		t.Fatalf("pending %d, want %d", st.Pending, pending)
	}
	if extra := runtime.NumGoroutine() - before; extra > pending/10 {
		t.Fatalf("%d more goroutines with %d messages pending", extra, pending)
	}
}

// BenchmarkJetStreamPublish publishes distinct ~300-byte messages through one
// publisher to an in-process server, as fast as acknowledgements allow.
func BenchmarkJetStreamPublish(b *testing.B) {
	s := natstest.Run(b)
	nc := connect(b, s, nil)
	p := newJS(b, nc, JetStreamOptions{})
	ensure(b, p.JetStream(), "DC", "dc")
	r := NewRoute("dc", "basketball", "fixture", "F1", "read:stream_events", "s/b/f/F1/e")
	base := bytes.Repeat([]byte("x"), 300)
	var (
		wg     sync.WaitGroup
		failed sync.Once
	)
	done := func(err error) {
		if err != nil {
			failed.Do(func() { b.Error(err) })
		}
		wg.Done()
	}
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		payload := slices.Clone(base)
		copy(payload, itoa(i))
		wg.Add(1)
		if err := p.Publish(context.Background(), r.Msg(payload, now), done); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
}
