package sink

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/datacore-bridge/datacore-bridge/internal/backoff"
	"github.com/datacore-bridge/datacore-bridge/internal/logtest"
	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

// TestStreamEnsurerRetriesUntilJetStream starts a StreamEnsurer against a
// server without JetStream: it reports why the stream is not there and keeps
// trying, and once the server is back with JetStream it creates the stream,
// says so once and stops trying.
func TestStreamEnsurerRetriesUntilJetStream(t *testing.T) {
	s := natstest.Run(t, func(o *server.Options) { o.JetStream = false })
	nc := connect(t, s, nil)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	e := NewStreamEnsurer(js, StreamEnsurerOptions{
		Stream: "ENSURED", Prefix: "dc",
		Backoff: backoff.Policy{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		Hint:    "check the account's JetStream limits",
		Logger:  slog.New(slog.NewJSONHandler(logs, nil)),
	})
	if err := e.Err(); err == nil || !strings.Contains(err.Error(), "ENSURED not ensured yet") {
		t.Fatalf("Err before Start = %v, want not ensured yet", err)
	}
	e.Start(context.Background())
	t.Cleanup(e.Stop)
	poll.Wait(t, waitLimit, "a failure logged", func() bool { return logs.Count("cannot create or update the JetStream stream; retrying") >= 1 })
	if err := e.Err(); err == nil || !strings.HasPrefix(err.Error(), "stream ENSURED: ") {
		t.Fatalf("Err without JetStream = %v, want one naming the stream", err)
	}
	if !strings.Contains(logs.String(), `"hint":"check the account's JetStream limits"`) {
		t.Errorf("failure logged without the hint:\n%s", logs.String())
	}

	s.Stop()
	s.Options.JetStream = true
	s.Options.StoreDir = t.TempDir()
	natstest.Rerun(t, s)
	poll.Wait(t, waitLimit, "the stream to be ensured", func() bool { return e.Err() == nil })
	e.Stop()
	if n := logs.Count("stream ready"); n != 1 {
		t.Errorf("stream ready logged %d times, want 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "ENSURED")
	if err != nil {
		t.Fatalf("stream after Err() == nil: %v", err)
	}
	if got := st.CachedInfo().Config.Subjects; len(got) != 1 || got[0] != "dc.>" {
		t.Errorf("stream subjects = %v, want [dc.>]", got)
	}
}

// TestStreamEnsurerStop checks that Stop ends the retries of a stream that
// cannot be created, waits for them, and can be called again; and that Stop
// without Start returns at once.
func TestStreamEnsurerStop(t *testing.T) {
	s := natstest.Run(t, func(o *server.Options) { o.JetStream = false })
	nc := connect(t, s, nil)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	e := NewStreamEnsurer(js, StreamEnsurerOptions{Stream: "NEVER", Prefix: "dc", Logger: log,
		Backoff: backoff.Policy{Min: time.Millisecond, Max: time.Millisecond}})
	e.Start(context.Background())
	poll.Wait(t, waitLimit, "a failure logged", func() bool { return logs.Count("cannot create or update the JetStream stream; retrying") >= 1 })
	e.Stop()
	e.Stop()
	if e.Err() == nil {
		t.Error("Err = nil for a stream that was never created")
	}
	select {
	case <-e.done:
	default:
		t.Error("Stop returned before the retry loop ended")
	}

	idle := NewStreamEnsurer(js, StreamEnsurerOptions{Stream: "IDLE", Prefix: "dc", Logger: log})
	idle.Stop()
	idle.Start(context.Background()) // after Stop: does nothing
	idle.Stop()
}

// TestWatchStatus checks that the watcher reports the state at start, a
// lost connection, the reconnect, and nothing after Stop.
func TestWatchStatus(t *testing.T) {
	s := natstest.Run(t)
	nc := connect(t, s, nil)

	var mu sync.Mutex
	var seen []bool
	last := func() (bool, int) {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return false, 0
		}
		return seen[len(seen)-1], len(seen)
	}
	w := WatchStatus(nc, func(up bool) {
		mu.Lock()
		seen = append(seen, up)
		mu.Unlock()
	})
	if up, n := last(); !up || n != 1 {
		t.Fatalf("at start: last %v after %d calls, want true after 1", up, n)
	}

	s.Stop()
	poll.Wait(t, waitLimit, "the watcher to report the lost connection", func() bool { up, _ := last(); return !up })
	natstest.Rerun(t, s)
	waitStatus(t, nc, nats.CONNECTED)
	poll.Wait(t, waitLimit, "the watcher to report the reconnect", func() bool { up, _ := last(); return up })

	w.Stop()
	w.Stop()
	_, n := last()
	nc.Close()
	if _, after := last(); after != n {
		t.Errorf("%d calls after Stop, want none", after-n)
	}
}

// TestDrain checks that Drain flushes what was published and closes the
// connection, and that a connection already closed or down is no error.
func TestDrain(t *testing.T) {
	s := natstest.Run(t)
	nc := connect(t, s, nil)
	sub := connect(t, s, nil)
	got, err := sub.SubscribeSync("drain.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := nc.Publish("drain."+itoa(i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Drain(ctx, nc); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if !nc.IsClosed() {
		t.Error("connection not closed after Drain")
	}
	for range 100 {
		recv(t, got)
	}
	if err := Drain(ctx, nc); err != nil {
		t.Errorf("Drain of a closed connection: %v", err)
	}

	down := connect(t, s, nil)
	s.Stop()
	waitStatus(t, down, nats.RECONNECTING)
	if err := Drain(ctx, down); err != nil {
		t.Errorf("Drain of a connection that is down: %v", err)
	}
	if !down.IsClosed() {
		t.Error("connection that was down not closed after Drain")
	}
}
