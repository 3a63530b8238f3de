package natstest

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

// readyWait bounds how long Start and Restart wait for the server to take
// connections.
const readyWait = 10 * time.Second

// Server is an embedded nats-server. Options holds what it was started with,
// its port filled in, so that Restart brings it back on the same port and
// store after Stop.
type Server struct {
	*server.Server
	Options server.Options
	tmpDir  string // a store directory Start made and Close removes
}

// NewOptions returns the options of an embedded server on 127.0.0.1, a
// random port, without logs or signal handlers, with JetStream when
// jetStream is set (in a temporary store unless StoreDir is set later).
func NewOptions(jetStream bool) server.Options {
	return server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: jetStream}
}

// Start starts an embedded server with opts (see NewOptions) and waits
// until it takes connections. With JetStream and no StoreDir it stores in a
// temporary directory that Close removes.
func Start(opts server.Options) (*Server, error) {
	s := &Server{Options: opts}
	if opts.JetStream && opts.StoreDir == "" {
		dir, err := os.MkdirTemp("", "datacore-natstest-js-")
		if err != nil {
			return nil, fmt.Errorf("nats server: %w", err)
		}
		s.tmpDir, s.Options.StoreDir = dir, dir
	}
	if err := s.Restart(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Restart starts the server again with the same options, port and store
// (after Stop), and waits until it takes connections.
func (s *Server) Restart() error {
	o := s.Options
	ns, err := server.NewServer(&o)
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(readyWait) {
		ns.Shutdown()
		return fmt.Errorf("nats server: not ready: %w", poll.ErrTimeout)
	}
	s.Server = ns
	s.Options.Port = ns.Addr().(*net.TCPAddr).Port
	return nil
}

// Stop shuts the server down and waits for it; Restart brings it back.
func (s *Server) Stop() {
	if s.Server != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Close stops the server and removes a temporary store.
func (s *Server) Close() {
	s.Stop()
	if s.tmpDir != "" {
		_ = os.RemoveAll(s.tmpDir)
	}
}

// Run starts a server for a test: NewOptions with JetStream, storing under
// t.TempDir(), changed by each of mods in turn (a mod may turn JetStream off
// or set Port). It fails the test if the server does not start, and closes
// it at cleanup.
func Run(t testing.TB, mods ...func(*server.Options)) *Server {
	t.Helper()
	opts := NewOptions(true)
	for _, mod := range mods {
		if mod != nil {
			mod(&opts)
		}
	}
	if opts.JetStream && opts.StoreDir == "" {
		opts.StoreDir = t.TempDir()
	}
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Rerun restarts s (after Stop) on the same port and store, failing the
// test if it does not start.
func Rerun(t testing.TB, s *Server) {
	t.Helper()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
}

// Connect dials s with opts, failing the test on error, and closes the
// connection at cleanup.
func (s *Server) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns JetStream over a new connection to s (see Connect).
func (s *Server) JetStream(t testing.TB, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(s.Connect(t, opts...))
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}
