package sink

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/datacore-bridge/datacore-bridge/internal/logtest"
	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

// TestJetStreamReadyReportsMissingStream publishes to a subject no stream captures:
// Ready must turn to an error naming the cause once the message has been failing for
// StalledAfter, the cause is logged once, and Ready is nil again once a stream
// acknowledges it.
func TestJetStreamReadyReportsMissingStream(t *testing.T) {
	s := natstest.Run(t)
	nc := connect(t, s, nil)
	var logs logtest.Buffer
	const hint = "create the stream, please"
	p := newJS(t, nc, JetStreamOptions{
		RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond,
		StalledAfter: 300 * time.Millisecond, NoStreamHint: hint,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err := p.Ready(); err != nil {
		t.Fatalf("Ready before any publish = %v", err)
	}
	dones := newDoneSink(3)
	for i := range 3 {
		if err := p.Publish(context.Background(), &nats.Msg{Subject: "nostream.x", Data: []byte(itoa(i))}, dones.done); err != nil {
			t.Fatal(err)
		}
	}
	var readyErr error
	poll.Wait(t, waitLimit, "Ready to report the stall", func() bool { readyErr = p.Ready(); return readyErr != nil })
	if !errors.Is(readyErr, ErrStalled) || !strings.Contains(readyErr.Error(), "no JetStream stream captures subject nostream.x: "+hint) {
		t.Fatalf("Ready = %v, want ErrStalled naming the missing stream and the hint", readyErr)
	}
	poll.Wait(t, waitLimit, "several retries", func() bool { return p.Stats().Retries >= 6 })
	if n := logs.Count("jetstream publish failed, retrying"); n < 1 || strings.Count(logs.String(), "no JetStream stream captures subject") != 1 {
		t.Fatalf("cause logged %d times in %d warnings, want once: %s", strings.Count(logs.String(), "no JetStream stream captures subject"), n, logs.String())
	}

	ensure(t, p.JetStream(), "NOSTREAM", "nostream")
	for _, err := range dones.wait(t, 3, 10*time.Second) {
		if err != nil {
			t.Fatalf("done(%v) once the stream exists", err)
		}
	}
	if err := p.Ready(); err != nil {
		t.Fatalf("Ready once acknowledged = %v", err)
	}
}
