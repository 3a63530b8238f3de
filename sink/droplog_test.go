package sink

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/datacore-bridge/datacore-bridge/internal/logtest"
	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

// TestDropsAreLoggedOnce publishes many messages that fail for good and checks that
// each publisher logs the drop once (with a count of what it held back later), not
// once per message, and that done gets an error callers can classify.
func TestDropsAreLoggedOnce(t *testing.T) {
	const n = 300
	tests := []struct {
		name    string
		logLine string
		run     func(t *testing.T, log *slog.Logger, dones doneSink) Stats
		isCause func(error) bool
	}{
		{
			name:    "core, payload over max_payload",
			logLine: "nats publish failed, message dropped",
			run: func(t *testing.T, log *slog.Logger, dones doneSink) Stats {
				s := natstest.Run(t, func(o *server.Options) { o.JetStream = false; o.MaxPayload = 64 })
				p := NewCore(connect(t, s, nil), CoreOptions{Logger: log})
				defer p.Close()
				for range n {
					if err := p.Publish(context.Background(), &nats.Msg{Subject: "dc.x", Data: make([]byte, 128)}, dones.done); err != nil {
						t.Fatal(err)
					}
				}
				return p.Stats()
			},
			isCause: func(err error) bool { return errors.Is(err, nats.ErrMaxPayload) },
		},
		{
			name:    "jetstream, message over the stream's max size",
			logLine: "jetstream publish failed for good, message dropped",
			run: func(t *testing.T, log *slog.Logger, dones doneSink) Stats {
				s := natstest.Run(t)
				p := newJS(t, connect(t, s, nil), JetStreamOptions{Logger: log})
				ctx := context.Background()
				if _, err := p.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: "SMALL", Subjects: []string{"small.>"}, MaxMsgSize: 8}); err != nil {
					t.Fatal(err)
				}
				for i := range n {
					// Distinct payloads: the same one would be a duplicate of the first.
					msg := &nats.Msg{Subject: "small.x", Data: append(bytes.Repeat([]byte("x"), 64), itoa(i)...)}
					if err := p.Publish(ctx, msg, dones.done); err != nil {
						t.Fatal(err)
					}
				}
				poll.Wait(t, waitLimit, "every message dropped", func() bool { return p.Stats().Dropped == n })
				return p.Stats()
			},
			isCause: func(err error) bool {
				var apiErr *jetstream.APIError
				return errors.As(err, &apiErr) && apiErr.Code == 400
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logtest.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			dones := newDoneSink(n)
			st := tt.run(t, log, dones)
			for i, err := range dones.wait(t, n, 10*time.Second) {
				if !tt.isCause(err) {
					t.Fatalf("done #%d(%v): not the expected cause", i+1, err)
				}
			}
			if st.Dropped != n {
				t.Fatalf("stats %+v, want %d dropped", st, n)
			}
			if got := logs.Count(tt.logLine); got != 1 {
				t.Fatalf("%q logged %d times for %d drops, want once", tt.logLine, got, n)
			}
			if !strings.Contains(logs.String(), `"suppressed":0`) {
				t.Fatalf("drop line without its suppressed count: %s", logs.String())
			}
		})
	}
}
