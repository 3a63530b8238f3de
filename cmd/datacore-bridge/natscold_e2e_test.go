package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/internal/bridge"
	"github.com/datacore-bridge/datacore-bridge/internal/logtest"
	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/metrics"
	"github.com/datacore-bridge/datacore-bridge/sim"
	"github.com/datacore-bridge/datacore-bridge/sink"
)

// TestCoreColdStartWithoutNATS starts the bridge in core mode while no NATS
// server runs on DATACORE_NATS_URL, as in a Compose or Kubernetes cold start.
// The messages the broker delivers meanwhile must wait and be published once
// NATS is up: nothing dropped inside the bridge, every seq of every subject
// from the first one received on in NATS, retries counted.
func TestCoreColdStartWithoutNATS(t *testing.T) {
	const fixture = "sr:match:80"
	emu, err := sim.Start(context.Background(), sim.Options{
		CredentialID: testCredID, CredentialSecret: testCredSecret,
		Fixtures: []string{fixture}, Feed: sim.Feed{Rate: 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })

	port := freePort(t)
	// A stream over the bridge's subjects, in the store the server will start
	// with: core publishes are captured from the server's first client on, so
	// that nothing the bridge publishes at connect time can be missed.
	nsOp := &server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true, JetStream: true, StoreDir: t.TempDir()}
	prepareCaptureStream(t, *nsOp, "CAPTURE", config.Defaults().SubjectPrefix+".>")

	cfg := config.Defaults()
	cfg.APIURL = emu.APIURL()
	cfg.CredentialID, cfg.CredentialSecret = testCredID, testCredSecret
	cfg.Fixtures = []string{fixture}
	cfg.NATSURLs = []string{fmt.Sprintf("nats://127.0.0.1:%d", port)}
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.LogLevel = "debug"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	m := metrics.New()
	b, err := bridge.Start(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		bridge.Options{Metrics: m, MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		t.Fatalf("start without NATS: %v", err)
	}
	e := &env{t: t, b: b, cfg: cfg, m: m, logs: logs, nsOp: nsOp}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = b.Shutdown(context.Background())
		}
	})
	core, ok := b.Publisher().(*sink.Core)
	if !ok {
		t.Fatalf("publisher is %T, want *sink.Core", b.Publisher())
	}

	// The bridge receives while NATS is away: its publisher waits.
	poll.Wait(t, 20*time.Second, "messages received and waiting for NATS", func() bool {
		if n := counterSum(t, m, "datacore_messages_dropped_total"); n != 0 {
			t.Fatalf("%v messages dropped while NATS was away, want them to wait", n)
		}
		return counterSum(t, m, "datacore_messages_received_total") > 0 && core.Stats().Pending > 0
	})
	if code, body := e.do(http.MethodGet, "/readyz", ""); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while NATS is away = %d %s, want 503", code, body)
	}
	if n := counterSum(t, m, "datacore_messages_dropped_total"); n != 0 {
		t.Fatalf("%v messages dropped while NATS was away", n)
	}

	e.startNATS()
	t.Cleanup(e.ns.Shutdown)
	poll.Wait(t, 20*time.Second, "ready once NATS is up", func() bool {
		code, _ := e.do(http.MethodGet, "/readyz", "")
		return code == http.StatusOK
	})
	atStart := counterSum(t, m, "datacore_messages_received_total")
	poll.Wait(t, 20*time.Second, "messages to flow after NATS came up", func() bool {
		return counterSum(t, m, "datacore_messages_published_total") >= atStart+20
	})

	// Stop: everything received is settled by then.
	stopped = true
	if err := b.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	received := counterSum(t, m, "datacore_messages_received_total")
	published := counterSum(t, m, "datacore_messages_published_total")
	if dropped := counterSum(t, m, "datacore_messages_dropped_total"); dropped != 0 {
		t.Errorf("messages_dropped_total = %v, want 0", dropped)
	}
	if published != received {
		t.Errorf("published %v of %v received messages", published, received)
	}
	st := core.Stats()
	if st.Dropped != 0 || st.Retries == 0 {
		t.Errorf("publisher stats %+v: want retries (the waiting messages) and nothing dropped", st)
	}
	if retries := testutil.ToFloat64(m.PublishRetries); retries != float64(st.Retries) {
		t.Errorf("publish_retries_total = %v, publisher retried %d times", retries, st.Retries)
	}

	seqs := capturedSeqs(t, e.ns.ClientURL(), "CAPTURE")
	total := 0
	for subject, got := range seqs {
		lo, hi := ^uint64(0), uint64(0)
		for s, n := range got {
			lo, hi = min(lo, s), max(hi, s)
			total += n
			if n > 1 {
				t.Errorf("%s: seq %d published %d times", subject, s, n)
			}
		}
		for s := lo; s <= hi; s++ {
			if got[s] == 0 {
				t.Errorf("%s: seq %d missing (have %d..%d)", subject, s, lo, hi)
			}
		}
	}
	if len(seqs) == 0 || float64(total) != published {
		t.Errorf("NATS holds %d messages on %d subjects, the bridge published %v", total, len(seqs), published)
	}
	e.assertNoSecretsInLogs()
}

// prepareCaptureStream runs a server with opts (JetStream, a store directory)
// once on a random port, creates a stream called name over subjects in that
// store and stops it, so that a server started later with opts has the stream
// from its first client on.
func prepareCaptureStream(t *testing.T, opts server.Options, name, subjects string) {
	t.Helper()
	opts.Port = -1
	ns, err := natstest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ns.JetStream(t).CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subjects}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
}

// capturedSeqs reads every message of stream name and counts, per subject,
// how many times each emulator seq is stored.
func capturedSeqs(t *testing.T, url, name string) map[string]map[uint64]int {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[uint64]int{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		msg, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("stream message %d: %v", seq, err)
		}
		var env envelope
		if err := json.Unmarshal(msg.Data, &env); err != nil || env.Data.Seq == 0 {
			t.Fatalf("stream message %d on %s is not the emulator's: %s", seq, msg.Subject, msg.Data)
		}
		if out[msg.Subject] == nil {
			out[msg.Subject] = map[uint64]int{}
		}
		out[msg.Subject][env.Data.Seq]++
	}
	return out
}

// counterSum is the sum of every series of the counter family called name.
func counterSum(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			sum += s.GetCounter().GetValue()
		}
	}
	return sum
}
