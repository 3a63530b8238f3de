package sink

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
)

// waitLimit bounds every wait on a condition in these tests.
const waitLimit = 10 * time.Second

// connect dials s through Connect with fast reconnects.
func connect(t testing.TB, s *natstest.Server, mod func(*ConnectOptions)) *nats.Conn {
	t.Helper()
	o := ConnectOptions{URLs: s.ClientURL(), Name: "sink-test", ReconnectWait: 20 * time.Millisecond}
	if mod != nil {
		mod(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := Connect(ctx, o)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// waitStatus waits until nc reaches one of the wanted statuses, or fails after 10 s.
func waitStatus(t testing.TB, nc *nats.Conn, want ...nats.Status) {
	t.Helper()
	ch := nc.StatusChanged(want...)
	defer nc.RemoveStatusListener(ch)
	is := func(st nats.Status) bool {
		for _, w := range want {
			if st == w {
				return true
			}
		}
		return false
	}
	if is(nc.Status()) {
		return
	}
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case <-ch:
	case <-timer.C:
		t.Fatalf("connection status %v, want one of %v", nc.Status(), want)
	}
}

// recv waits for one message on sub.
func recv(t testing.TB, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("NextMsg: %v", err)
	}
	return m
}

// doneSink collects done callbacks.
type doneSink chan error

func newDoneSink(n int) doneSink { return make(doneSink, n) }

func (d doneSink) done(err error) { d <- err }

// wait collects n results, failing after timeout.
func (d doneSink) wait(t testing.TB, n int, timeout time.Duration) []error {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	out := make([]error, 0, n)
	for len(out) < n {
		select {
		case err := <-d:
			out = append(out, err)
		case <-timer.C:
			t.Fatalf("got %d done callbacks, want %d", len(out), n)
		}
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }
