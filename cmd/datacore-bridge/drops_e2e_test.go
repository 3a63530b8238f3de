package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// TestOversizeMessagesAreAcknowledged runs the bridge against a NATS server
// whose max_payload is below the size of every message the emulator sends,
// at QoS 1, with the emulator keeping at most 100 messages unacknowledged
// per client as AWS IoT Core does. Every message is dropped; each must be
// acknowledged all the same, or the broker stops sending after 100 while the
// bridge says it is ready. The drops are counted as too_large and logged
// once, not once each.
func TestOversizeMessagesAreAcknowledged(t *testing.T) {
	const id = "sr:match:95"
	e := newEnv(t, envOptions{
		sim:       sim.Options{Fixtures: []string{id}, Feed: sim.Feed{Rate: 300, PayloadSize: 2048}},
		nats:      func(o *server.Options) { o.MaxPayload = 1024 },
		configure: func(c *config.Config) { c.Fixtures = []string{id} },
	})
	received := func() float64 { return sumMetric(t, e, "datacore_messages_received_total", "") }
	poll.Wait(t, 30*time.Second, "more than 300 messages received (three in-flight windows)", func() bool { return received() > 300 })
	if code, body := e.do(http.MethodGet, "/readyz", ""); code != http.StatusOK {
		t.Fatalf("/readyz = %d %s", code, body)
	}

	// Stop following, so that the numbers settle.
	if code, body := e.do(http.MethodDelete, "/v1/fixtures/"+id, testAdminToken); code != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", code, body)
	}
	tooLarge := func() float64 { return testutil.ToFloat64(e.m.Dropped.WithLabelValues("too_large")) }
	shutdown := func() float64 { return testutil.ToFloat64(e.m.Dropped.WithLabelValues("shutdown")) }
	poll.Wait(t, 10*time.Second, "every message received settled", func() bool {
		return len(e.subscriptions()) == 0 && testutil.ToFloat64(e.m.Inflight) == 0 &&
			tooLarge()+shutdown() == received()
	})
	if got := sumMetric(t, e, "datacore_messages_published_total", ""); got != 0 {
		t.Fatalf("published = %v, want 0", got)
	}
	if got := tooLarge(); got < 300 {
		t.Fatalf("dropped{too_large} = %v, want every message received but the last ones given up at the stop (received %v)", got, received())
	}
	for _, reason := range []string{"publish_error", "rejected", "unknown_topic"} {
		if got := testutil.ToFloat64(e.m.Dropped.WithLabelValues(reason)); got != 0 {
			t.Errorf("dropped{%s} = %v, want 0", reason, got)
		}
	}

	// One warning about the drops, however many there were.
	var warnings []string
	for line := range strings.SplitSeq(e.logs.String(), "\n") {
		var rec struct {
			Level, Msg string
		}
		if json.Unmarshal([]byte(line), &rec) != nil || (rec.Level != "WARN" && rec.Level != "ERROR") {
			continue
		}
		if strings.Contains(rec.Msg, "dropped") {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `"reason":"too_large"`) {
		t.Fatalf("%d warnings about dropped messages, want 1 naming reason too_large; the first: %.500s", len(warnings), strings.Join(warnings, "\n"))
	}
}

// TestDecompressKeepsWhatWouldNotFit runs the bridge with DATACORE_DECOMPRESS
// against a NATS server whose max_payload takes the emulator's compressed
// messages but not the same messages inflated: they are published as the
// broker sent them, compressed, and counted; none is dropped.
func TestDecompressKeepsWhatWouldNotFit(t *testing.T) {
	const id = "sr:match:96"
	e := newEnv(t, envOptions{
		sim: sim.Options{Fixtures: []string{id}, Feed: sim.Feed{Rate: 100, PayloadSize: 4096, Compress: true, FlatPadding: true}},
		// Compressed a message is well under 1 KiB, inflated about 4 KiB.
		nats: func(o *server.Options) { o.MaxPayload = 2048 },
		configure: func(c *config.Config) {
			c.Fixtures = []string{id}
			c.Decompress = true
		},
	})
	nc, err := nats.Connect(e.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync(e.cfg.SubjectPrefix + ".>")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		msg, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		var env struct {
			Data           json.RawMessage `json:"data"`
			CompressedData *string         `json:"compressedData"`
		}
		if err := json.Unmarshal(msg.Data, &env); err != nil {
			t.Fatalf("payload is not JSON: %v: %.200s", err, msg.Data)
		}
		if env.CompressedData == nil || env.Data != nil {
			t.Fatalf("message %d on %s is not the compressed original: %.200s", i, msg.Subject, msg.Data)
		}
	}

	if code, body := e.do(http.MethodDelete, "/v1/fixtures/"+id, testAdminToken); code != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", code, body)
	}
	received := func() float64 { return sumMetric(t, e, "datacore_messages_received_total", "") }
	poll.Wait(t, 10*time.Second, "every message received settled", func() bool {
		return len(e.subscriptions()) == 0 && testutil.ToFloat64(e.m.Inflight) == 0
	})
	published := sumMetric(t, e, "datacore_messages_published_total", "")
	shutdown := testutil.ToFloat64(e.m.Dropped.WithLabelValues("shutdown"))
	if dropped := sumMetric(t, e, "datacore_messages_dropped_total", "shutdown"); dropped != 0 || published+shutdown != received() {
		t.Fatalf("received %v, published %v, dropped %v (and %v at the stop): want every message published", received(), published, dropped, shutdown)
	}
	if skipped := testutil.ToFloat64(e.m.DecompressSkipped); skipped < 30 || skipped > published+shutdown {
		t.Fatalf("decompress_skipped_total = %v, want one per message published (%v)", skipped, published)
	}
	if n := testutil.ToFloat64(e.m.DecompressErrors); n != 0 {
		t.Fatalf("decompress_errors_total = %v, want 0", n)
	}
}
