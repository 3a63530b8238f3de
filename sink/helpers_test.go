package sink

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
)

// waitLimit bounds every wait on a condition in these tests.
const waitLimit = 10 * time.Second

// runServer starts an in-process nats-server on a random port with JetStream in a
// temporary store, after mod (if any) has adjusted the options. It returns the server
// and the options to restart it with (same port, same store).
func runServer(t testing.TB, mod func(*server.Options)) (*server.Server, server.Options) {
	t.Helper()
	opts := test.DefaultTestOptions
	opts.Port = -1
	opts.JetStream = true
	opts.StoreDir = t.TempDir()
	if mod != nil {
		mod(&opts)
	}
	s := test.RunServer(&opts)
	t.Cleanup(s.Shutdown)
	opts.Port = s.Addr().(*net.TCPAddr).Port
	return s, opts
}

// restartServer starts a server again with opts (same port and store directory).
func restartServer(t testing.TB, opts server.Options) *server.Server {
	t.Helper()
	s := test.RunServer(&opts)
	t.Cleanup(s.Shutdown)
	return s
}

func stopServer(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// connect dials s through Connect with fast reconnects.
func connect(t testing.TB, s *server.Server, mod func(*ConnectOptions)) *nats.Conn {
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

// runServerOnPort starts a server on a given port (see runServer).
func runServerOnPort(t testing.TB, port int, mod func(*server.Options)) (*server.Server, server.Options) {
	t.Helper()
	return runServer(t, func(o *server.Options) {
		o.Port = port
		if mod != nil {
			mod(o)
		}
	})
}

func itoa(i int) string { return strconv.Itoa(i) }
