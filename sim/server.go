package sim

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// Server is a running emulator. Its methods are safe for concurrent use.
type Server struct {
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	key    []byte // signs URLs; random per server
	ln     net.Listener
	port   int
	http   *http.Server
	broker *mqtt.Server

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // feed streams, fault loop, HTTP serve loop
	connWG sync.WaitGroup // WebSocket connections

	mu          sync.Mutex
	fixtures    map[string]bool
	venues      map[string]bool
	grants      map[string]*grant  // by security token
	aliases     map[string]*alias  // by topic name
	streams     map[string]*stream // by kind+"/"+id
	sessions    map[*mqtt.Client]*session
	pending     map[*wsConn]struct{} // upgraded connections, closed on Close
	faults      Faults
	refuseUntil time.Time
	faultsCh    chan struct{} // signalled when DisconnectEvery changes
	closed      bool
	restTokens  map[string]*restToken // by token
	epoch       time.Time             // the service's clock at Start, whole seconds: the schedule's origin

	persist persistence
	stats   counters
}

type counters struct {
	grants, handshakesOK, handshakesRefused, connects, connectsRefused atomic.Uint64
	kicks, disconnects, published, dropped                             atomic.Uint64
	queued                                                             atomic.Int64
	restTokens                                                         atomic.Uint64
	mu                                                                 sync.Mutex
	access, token, rest                                                map[int]uint64
}

func (c *counters) accessStatus(code int) {
	c.mu.Lock()
	c.access[code]++
	c.mu.Unlock()
}

func (c *counters) tokenStatus(code int) {
	c.mu.Lock()
	c.token[code]++
	c.mu.Unlock()
}

func (c *counters) restStatus(code int) {
	c.mu.Lock()
	c.rest[code]++
	c.mu.Unlock()
}

// Start listens on o.Addr and serves the access API and the broker until
// Close. ctx bounds only the start-up.
func Start(ctx context.Context, o Options) (*Server, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("sim: listen: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port

	s := &Server{
		opts:       o,
		log:        o.Logger,
		now:        o.Now,
		key:        key,
		ln:         ln,
		port:       port,
		fixtures:   map[string]bool{},
		venues:     map[string]bool{},
		grants:     map[string]*grant{},
		aliases:    map[string]*alias{},
		streams:    map[string]*stream{},
		sessions:   map[*mqtt.Client]*session{},
		pending:    map[*wsConn]struct{}{},
		faults:     o.Faults,
		faultsCh:   make(chan struct{}, 1),
		stats:      counters{access: map[int]uint64{}, token: map[int]uint64{}, rest: map[int]uint64{}},
		restTokens: map[string]*restToken{},
		epoch:      o.Now().UTC().Truncate(time.Second),
		persist:    persistence{queues: map[string]*pqueue{}},
	}
	for _, id := range o.Fixtures {
		s.fixtures[id] = true
	}
	for _, id := range o.Venues {
		s.venues[id] = true
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	if err := s.startBroker(); err != nil {
		s.cancel()
		_ = ln.Close()
		return nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/stream/fixture/access", s.handleAccess(kindFixture))
	mux.HandleFunc("POST /v1/stream/venue/access", s.handleAccess(kindVenue))
	mux.HandleFunc("POST /v1/stream/fixture/specific", s.handleSpecific)
	mux.HandleFunc("POST /v1/oauth2/rest/token", s.handleToken)
	mux.HandleFunc("GET "+restPrefix+"/{sport}/o/{org}/fixtures", s.handleFixtures)
	mux.HandleFunc("GET /mqtt", s.handleMQTT)
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http serve failed", "error", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.disconnectLoop()
	}()
	s.log.Info("emulator started", "api", s.APIURL(), "rest", s.RESTURL(), "mqtt", "ws://"+ln.Addr().String()+"/mqtt")
	return s, nil
}

// APIURL returns the access API base, including /v1, e.g. "http://127.0.0.1:PORT/v1".
func (s *Server) APIURL() string {
	return "http://" + s.hostPort() + "/v1"
}

// Addr returns the address the emulator listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

func (s *Server) hostPort() string {
	host, _, _ := net.SplitHostPort(s.ln.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(s.port))
}

// Close stops the feed, closes every connection and the listener, and waits
// for every goroutine of the emulator to end. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	pending := make([]*wsConn, 0, len(s.pending))
	for c := range s.pending {
		pending = append(pending, c)
	}
	s.mu.Unlock()

	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	for _, c := range pending {
		_ = c.Close()
	}
	s.connWG.Wait() // every connection ended: the broker has no client left to wait for
	s.closePumps()
	s.wg.Wait() // the feed publishes no more
	_ = s.broker.Close()
	s.mu.Lock()
	for _, ss := range s.sessions {
		ss.stopTimer()
	}
	s.mu.Unlock()
	return err
}

// SetFaults replaces the fault knobs. Shares are clamped to 0..1 (and the
// answer-replacing shares scaled down to sum to at most 1), negative
// durations count as zero, and zero RetryAfter and SlowDelay take their defaults.
func (s *Server) SetFaults(f Faults) {
	f, _ = f.clamped().normalized()
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
	select {
	case s.faultsCh <- struct{}{}:
	default:
	}
}

// Faults returns the fault knobs in force.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// RefuseHandshakes makes every WebSocket upgrade answer 403 for d from now
// (on the Options.Now clock); 0 or less ends a refusal early.
func (s *Server) RefuseHandshakes(d time.Duration) {
	s.mu.Lock()
	s.refuseUntil = s.now().Add(d)
	s.mu.Unlock()
}

// AddFixture makes a fixture ID known to the access API.
func (s *Server) AddFixture(id string) {
	s.mu.Lock()
	s.fixtures[id] = true
	s.mu.Unlock()
}

// AddVenue makes a venue ID known to the access API.
func (s *Server) AddVenue(id string) {
	s.mu.Lock()
	s.venues[id] = true
	s.mu.Unlock()
}

// LastSeq returns the highest seq published for a stream and scope (kind
// "fixture" or "venue"); 0 when nothing was published. A catchup scope
// reports the seq of the message it would re-deliver.
func (s *Server) LastSeq(kind, id, scope string) uint64 {
	s.mu.Lock()
	st := s.streams[streamKey(kind, id)]
	s.mu.Unlock()
	if st == nil {
		return 0
	}
	return st.lastSeq(baseScope(scope))
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Grants:            s.stats.grants.Load(),
		HandshakesOK:      s.stats.handshakesOK.Load(),
		HandshakesRefused: s.stats.handshakesRefused.Load(),
		Connects:          s.stats.connects.Load(),
		ConnectsRefused:   s.stats.connectsRefused.Load(),
		Kicks:             s.stats.kicks.Load(),
		Disconnects:       s.stats.disconnects.Load(),
		Published:         s.stats.published.Load(),
		Dropped:           s.stats.dropped.Load() + uint64(atomic.LoadInt64(&s.broker.Info.InflightDropped)),
		Queued:            int(s.stats.queued.Load()),
		RESTTokens:        s.stats.restTokens.Load(),
	}
	s.stats.mu.Lock()
	st.AccessCalls = maps.Clone(s.stats.access)
	st.TokenCalls = maps.Clone(s.stats.token)
	st.RESTCalls = maps.Clone(s.stats.rest)
	s.stats.mu.Unlock()
	s.mu.Lock()
	st.Connected = len(s.sessions)
	s.mu.Unlock()
	return st
}

// disconnectLoop closes every connection each Faults.DisconnectEvery.
func (s *Server) disconnectLoop() {
	for {
		every := s.Faults().DisconnectEvery
		var tick <-chan time.Time
		var timer *time.Timer
		if every > 0 {
			timer = time.NewTimer(every)
			tick = timer.C
		}
		select {
		case <-s.ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case <-s.faultsCh:
			if timer != nil {
				timer.Stop()
			}
		case <-tick:
			n := s.DisconnectAll()
			s.log.Info("disconnected every client", "fault", "disconnect_every", "clients", n)
		}
	}
}

// SessionInfo describes one MQTT session the broker holds: a connected
// client, or a persistent session kept for a client that went away.
type SessionInfo struct {
	ClientID string
	// Connected reports whether a client is connected on the session now.
	Connected bool
	// Persistent reports a session kept after its connection ends (CONNECT
	// with clean session false).
	Persistent bool
	// Subscriptions are the session's topic filters, sorted.
	Subscriptions []string
}

// Sessions lists the sessions the broker holds, sorted by client id.
func (s *Server) Sessions() []SessionInfo {
	var out []SessionInfo
	for id, cl := range s.broker.Clients.GetAll() {
		if cl.Net.Inline {
			continue
		}
		info := SessionInfo{ClientID: id, Connected: !cl.Closed(), Persistent: !cl.Properties.Clean}
		for f := range cl.State.Subscriptions.GetAll() {
			info.Subscriptions = append(info.Subscriptions, f)
		}
		slices.Sort(info.Subscriptions)
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return strings.Compare(a.ClientID, b.ClientID) })
	return out
}
