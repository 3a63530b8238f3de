package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/sim"
	"github.com/datacore-bridge/datacore-bridge/sink"
)

// TestJetStreamWithoutStreamIsNotReady runs JetStream mode without
// DATACORE_STREAM and without any stream over the subjects: nothing can reach
// NATS, so /readyz must answer 503 naming the missing stream and what to do.
// Once a stream is created, /readyz turns 200, messages flow, and the retries
// are counted in datacore_publish_retries_total.
func TestJetStreamWithoutStreamIsNotReady(t *testing.T) {
	const fixture = "sr:match:81"
	e := newEnv(t, envOptions{
		jetStream: true,
		sim:       sim.Options{Fixtures: []string{fixture}, Feed: sim.Feed{Rate: 20}},
		configure: func(c *config.Config) {
			c.Fixtures = []string{fixture}
			c.Stream = ""
		},
	})
	jp, ok := e.b.Publisher().(*sink.JetStream)
	if !ok {
		t.Fatalf("publisher is %T, want *sink.JetStream", e.b.Publisher())
	}
	var body string
	poll.Wait(t, 30*time.Second, "/readyz to report the missing stream", func() bool {
		var code int
		code, body = e.do(http.MethodGet, "/readyz", "")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "no JetStream stream")
	})
	var answer struct{ Reason string }
	if err := json.Unmarshal([]byte(body), &answer); err != nil {
		t.Fatalf("/readyz body %s: %v", body, err)
	}
	for _, want := range []string{"no JetStream stream captures subject " + e.cfg.SubjectPrefix + ".", "set DATACORE_STREAM or create a stream over " + e.cfg.SubjectPrefix + ".>"} {
		if !strings.Contains(answer.Reason, want) {
			t.Errorf("/readyz reason %q does not say %q", answer.Reason, want)
		}
	}
	if n := natstest.CountLines(e.logs.String(), `"level":"WARN"`, `"msg":"jetstream publish failed, retrying"`); n != 1 {
		t.Errorf("the failing publishes were warned about %d times, want once", n)
	}
	if n := natstest.CountLines(e.logs.String(), `"level":"WARN"`, "no JetStream stream captures subject"); n != 1 {
		t.Errorf("the missing stream was logged %d times at WARN, want once", n)
	}

	js := e.nats.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LATE", Subjects: []string{e.cfg.SubjectPrefix + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	poll.Wait(t, 20*time.Second, "/readyz 200 once the stream exists", func() bool {
		code, _ := e.do(http.MethodGet, "/readyz", "")
		return code == http.StatusOK
	})
	poll.Wait(t, 20*time.Second, "messages stored in the stream", func() bool {
		info, err := stream.Info(ctx)
		return err == nil && info.State.Msgs >= 20
	})
	if st := jp.Stats(); st.Retries == 0 || st.Dropped != 0 {
		t.Errorf("publisher stats %+v: want retries and nothing dropped", st)
	}
	poll.Wait(t, 10*time.Second, "publish_retries_total to equal the publisher's retries", func() bool {
		return testutil.ToFloat64(e.m.PublishRetries) == float64(jp.Stats().Retries)
	})
	if got := testutil.ToFloat64(e.m.PublishRetries); got == 0 {
		t.Errorf("publish_retries_total = 0 after retries")
	}
}
