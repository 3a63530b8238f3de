package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/cluster"
	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/discovery"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/httpapi"
	"github.com/datacore-bridge/datacore-bridge/metrics"
	"github.com/datacore-bridge/datacore-bridge/sink"
)

// NATS reconnection settings (see connectNATS).
const (
	natsReconnectWait = 250 * time.Millisecond
	natsReconnectBuf  = sink.DefaultReconnectBufSize
)

// Options are settings that the demo, the benchmark and the tests need and
// that no variable exposes. The zero value is the daemon's.
type Options struct {
	// Metrics receives the bridge's metrics; nil: a new metrics.Metrics.
	Metrics *metrics.Metrics
	// ConnLifetime is the service's connection lifetime (the emulator's can
	// be shorter); 0: the service's 24 h.
	ConnLifetime time.Duration
	// MinBackoff and MaxBackoff bound the reconnect backoff; 0: the supervisor's defaults.
	MinBackoff, MaxBackoff time.Duration
	// FailedRetry is how long a failed stream waits before trying again; 0: the supervisor's default.
	FailedRetry time.Duration
}

// Bridge is a running bridge: NATS, the publisher, the supervisor of streams
// and the HTTP server. Stop it with Shutdown.
type Bridge struct {
	cfg *config.Config
	log *slog.Logger
	m   *metrics.Metrics
	nc  *nats.Conn
	pub *publisher
	sup *fixtures.Supervisor
	// disc follows the configured organizations; nil without any, or in
	// cluster mode, where the node runs it on the leader.
	disc     *discovery.Poller
	discDone chan struct{}
	// node is this process's part of the cluster; nil without DATACORE_CLUSTER.
	node     *cluster.Node
	nodeDisc *leaderDiscovery

	// stopLife cancels the lifetime context: the supervisor, the stream
	// ensurer and the OAuth token requests.
	stopLife context.CancelFunc
	supDone  chan struct{}
	watch    *sink.StatusWatcher

	http     *http.Server
	httpAddr net.Addr
	httpDone chan struct{}

	shutdownOnce sync.Once
	shutdownErr  error
}

// Start connects to NATS, starts the supervisor with the configured fixtures
// and venues and serves HTTP. ctx bounds only the start (its values are kept
// for the bridge's life); the bridge runs until Shutdown. On error nothing is
// left running.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger, o Options) (_ *Bridge, err error) {
	m := o.Metrics
	if m == nil {
		m = metrics.New()
	}
	b := &Bridge{cfg: cfg, log: log, m: m}
	// undo runs, last first, when Start fails: the one cleanup path.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	// The lifetime context: cancelled by Shutdown (or a failed Start), not
	// by the end of ctx.
	life, stopLife := context.WithCancel(context.WithoutCancel(ctx))
	b.stopLife = stopLife
	undo = append(undo, stopLife)

	if b.nc, err = connectNATS(ctx, cfg, log); err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	undo = append(undo, b.nc.Close)

	if b.pub, err = newPublisher(cfg, b.nc, log, m); err != nil {
		return nil, err
	}
	undo = append(undo, func() {
		// Nothing was published yet: closing settles nothing and returns at once.
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		_ = b.pub.close(cancelled)
	})

	ac, err := newAccess(life, cfg)
	if err != nil {
		return nil, err
	}
	var hooks clusterHooks
	if b.sup, err = newSupervisor(ac, cfg, log, m, b.pub, b.nc.MaxPayload, o, &hooks); err != nil {
		return nil, err
	}

	var ln net.Listener
	if cfg.HTTPAddr != "" {
		if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("DATACORE_HTTP_ADDR: %w", err)
		}
		b.httpAddr = ln.Addr()
	}

	if cfg.Cluster != "" {
		if len(cfg.Organizations) > 0 {
			b.nodeDisc = &leaderDiscovery{orgs: cfg.Organizations}
		}
		if b.node, err = newNode(b.nc, ac, b.sup, cfg, log, m, addrString(b.httpAddr), b.nodeDisc); err != nil {
			return nil, fmt.Errorf("DATACORE_CLUSTER: %w", err)
		}
		hooks.node = b.node
	} else {
		if len(cfg.Organizations) > 0 {
			if b.disc, err = newDiscovery(ac, b.sup, cfg, log, m); err != nil {
				return nil, err
			}
		}
		for _, id := range cfg.Fixtures {
			if _, err := b.sup.FollowFrom(access.Fixture, id, fixtures.SourceEnv); err != nil {
				return nil, fmt.Errorf("DATACORE_FIXTURES: %w", err)
			}
		}
		for _, id := range cfg.Venues {
			if _, err := b.sup.FollowFrom(access.Venue, id, fixtures.SourceEnv); err != nil {
				return nil, fmt.Errorf("DATACORE_VENUES: %w", err)
			}
		}
	}

	// Nothing below fails: start the parts, each with its owner's stop.
	b.watch = sink.WatchStatus(b.nc, func(up bool) {
		if up {
			m.NATSConnected.Set(1)
		} else {
			m.NATSConnected.Set(0)
		}
	})
	if b.pub.ensure != nil {
		b.pub.ensure.Start(life)
	}
	b.supDone = make(chan struct{})
	go func() {
		defer close(b.supDone)
		_ = b.sup.Run(life)
	}()
	if b.disc != nil {
		b.discDone = make(chan struct{})
		go func() {
			defer close(b.discDone)
			_ = b.disc.Run(life)
		}()
	}
	if b.node != nil {
		go func() { _ = b.node.Run(life) }()
	}
	if ln != nil {
		var disc httpapi.Discovery
		switch {
		case b.disc != nil:
			disc = b.disc
		case b.nodeDisc != nil:
			disc = b.nodeDisc
		}
		var cl httpapi.Cluster
		if b.node != nil {
			cl = b.node
		}
		handler := httpapi.New(httpapi.Options{
			Supervisor: b.sup,
			Cluster:    cl,
			Discovery:  disc,
			NATSReady:  b.natsReady,
			AdminToken: cfg.AdminToken,
			Metrics:    m.Handler(),
			Logger:     log.With("component", "http"),
		})
		b.http = httpapi.NewServer(cfg.HTTPAddr, handler, log.With("component", "http"))
		b.httpDone = make(chan struct{})
		go func() {
			defer close(b.httpDone)
			if err := b.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server stopped", "err", err)
			}
		}()
	}

	args := []any{"fixtures", len(cfg.Fixtures), "venues", len(cfg.Venues), "organizations", len(cfg.Organizations),
		"api_host", apiHost(cfg.APIURL), "jetstream", cfg.JetStream, "http", addrString(b.httpAddr)}
	if b.node != nil {
		args = append(args, "cluster", cfg.Cluster, "instance", b.node.Instance(), "replicas", cfg.Replicas)
	}
	log.Info("started", args...)
	return b, nil
}

// connectNATS connects to the configured NATS servers (or keeps trying in
// the background: see sink.Connect).
func connectNATS(ctx context.Context, cfg *config.Config, log *slog.Logger) (*nats.Conn, error) {
	return sink.Connect(ctx, sink.ConnectOptions{
		// A restarted server is back within a few hundred milliseconds:
		// natsReconnectWait plus nats.go's jitter (up to 100 ms, 1 s with TLS).
		ReconnectWait: natsReconnectWait,
		// What core publishing buffers while reconnecting; once full,
		// publishing blocks (backpressure) instead of dropping.
		ReconnectBufSize: natsReconnectBuf,
		URLs:             strings.Join(cfg.NATSURLs, ","),
		Name:             "datacore-bridge",
		CredsFile:        cfg.NATSCreds,
		NKeyFile:         cfg.NATSNKey,
		Token:            cfg.NATSToken,
		User:             cfg.NATSUser,
		Password:         cfg.NATSPassword,
		TLSCA:            cfg.NATSTLSCA,
		TLSCert:          cfg.NATSTLSCert,
		TLSKey:           cfg.NATSTLSKey,
		AuthHint:         cfg.NATSAuthHint(),
		Logger:           log.With("component", "nats"),
	})
}

// newAccess builds the access client shared by the streams and discovery.
// life bounds the OAuth token requests: they end with the bridge.
func newAccess(life context.Context, cfg *config.Config) (*access.Client, error) {
	var token func(context.Context) (string, error)
	if cfg.OAuthTokenURL != "" {
		token = access.OAuth2Token(life, cfg.OAuthTokenURL, cfg.OAuthClientID, cfg.OAuthClientSecret, cfg.OAuthAudience)
	}
	return access.New(access.Options{
		BaseURL: cfg.APIURL,
		Credentials: access.Credentials{
			CredentialID:      cfg.CredentialID,
			CredentialSecret:  cfg.CredentialSecret,
			UserIdentityToken: cfg.UserIdentityToken,
			ApplicationID:     cfg.ApplicationID,
		},
		Token: token,
		// One client for every stream: the pace is process-wide.
		Rate:             rate.Limit(cfg.AccessRate),
		Burst:            cfg.AccessBurst,
		UnauthorizedHint: cfg.UnauthorizedHint(),
	})
}

// newSupervisor builds the supervisor of streams.
func newSupervisor(ac *access.Client, cfg *config.Config, log *slog.Logger, m *metrics.Metrics,
	pub sink.Publisher, maxPayload func() int64, o Options, hooks *clusterHooks) (*fixtures.Supervisor, error) {
	fo := fixtures.Options{
		Access:         ac,
		Publisher:      pub,
		Metrics:        m,
		Logger:         log,
		Sport:          cfg.Sport,
		FixtureScopes:  cfg.FixtureScopes,
		VenueScopes:    cfg.VenueScopes,
		IncludePort:    cfg.IncludePort,
		QoS:            byte(cfg.QoS),
		Persistent:     cfg.JetStream, // at-least-once: resume the MQTT session after a lost connection
		SubjectPrefix:  cfg.SubjectPrefix,
		MaxStreams:     cfg.MaxStreams,
		MaxInflight:    cfg.MaxInflight,
		DedupWindow:    dedupWindow(cfg.DedupWindow),
		StopAfterFinal: cfg.StopAfterFinal,
		Decompress:     cfg.Decompress,
		MaxPayload:     maxPayload,
		ConnLifetime:   o.ConnLifetime,
		MinBackoff:     o.MinBackoff,
		MaxBackoff:     o.MaxBackoff,
		FailedRetry:    o.FailedRetry,
	}
	if cfg.Cluster != "" {
		fo.OnStateChange = hooks.stateChanged
		fo.Finished = hooks.finished
	}
	return fixtures.New(fo)
}

// clusterHooks passes the supervisor's events to the cluster node, which is
// built after the supervisor; node is set before any stream runs.
type clusterHooks struct{ node *cluster.Node }

func (h *clusterHooks) stateChanged(kind access.Kind, id string, s fixtures.State) {
	h.node.StateChanged(kind, id, s)
}

func (h *clusterHooks) finished(kind access.Kind, id string) { h.node.Finished(kind, id) }

// newDiscovery builds the poller that follows the configured organizations'
// fixtures through the REST API, with tokens from the access client.
func newDiscovery(ac *access.Client, sup discovery.Follower, cfg *config.Config, log *slog.Logger, m *metrics.Metrics) (*discovery.Poller, error) {
	rc, err := discovery.NewClient(discovery.ClientOptions{
		BaseURL:       cfg.RESTURL,
		Sport:         cfg.Sport,
		Organizations: cfg.Organizations,
		Tokens:        ac,
	})
	if err != nil {
		return nil, fmt.Errorf("DATACORE_ORGANIZATIONS: %w", err)
	}
	return discovery.NewPoller(discovery.PollerOptions{
		Lister:        rc,
		Follower:      sup,
		Organizations: cfg.Organizations,
		Interval:      cfg.DiscoverInterval,
		Ahead:         cfg.DiscoverAhead,
		Venues:        cfg.DiscoverVenues,
		Metrics:       m,
		Logger:        log.With("component", "discovery"),
	})
}

// dedupWindow maps the configured window to the supervisor's: 0 disables.
func dedupWindow(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// natsReady is nil when NATS is connected, with DATACORE_STREAM the stream
// has been created or checked, and the publisher is not stuck (e.g. JetStream
// publishes that no stream acknowledges).
func (b *Bridge) natsReady() error {
	err := b.pub.ready()
	if errors.Is(err, sink.ErrNotConnected) {
		return err
	}
	if b.pub.ensure != nil {
		if e := b.pub.ensure.Err(); e != nil {
			return e
		}
	}
	return err
}

// Shutdown stops taking messages, finishes what is in flight, drains NATS
// and stops the HTTP server, all within the configured shutdown timeout, or
// at once when ctx is done (a second signal: stop now). It waits for every
// goroutine the bridge started. Its error wraps sink.ErrAbandoned when
// messages were left unsettled (and says how many); when ctx is not done, it
// is also an error that a step did not finish in time. With ctx done, only
// abandoned messages are an error: cutting the wait short is what was asked.
// Calls after the first return the first's result.
func (b *Bridge) Shutdown(ctx context.Context) error {
	b.shutdownOnce.Do(func() { b.shutdownErr = b.shutdown(ctx) })
	return b.shutdownErr
}

func (b *Bridge) shutdown(ctx context.Context) error {
	force := ctx
	ctx, cancel := context.WithTimeout(force, b.cfg.ShutdownTimeout)
	defer cancel()
	b.log.Info("shutting down")
	var errs []error
	fail := func(err error) {
		if force.Err() != nil && !errors.Is(err, sink.ErrAbandoned) {
			b.log.Warn("shutdown step cut short", "err", err)
			return
		}
		errs = append(errs, err)
	}

	if b.node != nil {
		b.handOver(ctx)
	}
	b.stopLife()
	if b.node != nil {
		select {
		case <-b.node.Done():
		case <-ctx.Done():
			fail(errors.New("cluster membership did not end in time"))
		}
	}
	if b.discDone != nil {
		select {
		case <-b.discDone:
		case <-ctx.Done():
			fail(errors.New("discovery did not stop in time"))
		}
	}
	select {
	case <-b.supDone:
	case <-ctx.Done():
		fail(errors.New("streams did not stop in time"))
	}
	if b.pub.ensure != nil {
		b.pub.ensure.Stop()
	}
	if err := b.pub.close(ctx); errors.Is(err, sink.ErrAbandoned) {
		// NATS did not take them before the deadline (it is away, or a
		// second signal came): they are counted in messages_dropped_total
		// and logged here; a stop cannot wait for NATS forever.
		b.log.Warn("shutdown abandoned unacknowledged publishes", "err", err)
		fail(fmt.Errorf("publisher: %w", err))
	} else if err != nil {
		fail(fmt.Errorf("publisher: %w", err))
	}
	if err := sink.Drain(ctx, b.nc); err != nil {
		fail(fmt.Errorf("nats drain: %w", err))
	}
	b.watch.Stop()
	if b.http != nil {
		if err := b.http.Shutdown(ctx); err != nil {
			_ = b.http.Close()
			fail(fmt.Errorf("http: %w", err))
		}
		<-b.httpDone
	}
	if len(errs) == 0 {
		b.log.Info("stopped")
	}
	return errors.Join(errs...)
}

// handOverReserve is the part of the shutdown timeout kept, after the
// handover, for the rest of the shutdown.
const handOverReserve = 5 * time.Second

// handOver hands the process's streams over to the other members before it
// stops them, within the shutdown timeout less what the rest of the shutdown
// needs.
func (b *Bridge) handOver(ctx context.Context) {
	budget := b.cfg.ShutdownTimeout - min(handOverReserve, b.cfg.ShutdownTimeout/3)
	hctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	start := time.Now()
	if err := b.node.Drain(hctx); err != nil {
		b.log.Warn("streams not all handed over: the rest stop now", "err", err)
		return
	}
	b.log.Info("streams handed over to the other members", "took", time.Since(start).Round(time.Millisecond).String())
}

// Addr is the HTTP API's address, or nil when DATACORE_HTTP_ADDR is empty.
func (b *Bridge) Addr() net.Addr { return b.httpAddr }

// Metrics are the bridge's metrics.
func (b *Bridge) Metrics() *metrics.Metrics { return b.m }

// Cluster is the bridge's cluster node; nil without DATACORE_CLUSTER.
func (b *Bridge) Cluster() *cluster.Node { return b.node }

// Supervisor is the supervisor of the bridge's streams: Follow and Unfollow
// change what it follows, Streams reports on them.
func (b *Bridge) Supervisor() *fixtures.Supervisor { return b.sup }

// Publisher is the publisher the streams publish through: a *sink.Core or a
// *sink.JetStream.
func (b *Bridge) Publisher() sink.Publisher { return b.pub.Publisher }

// NATS is the bridge's NATS connection, for inspection; the bridge closes it.
func (b *Bridge) NATS() *nats.Conn { return b.nc }

// Published returns the number of messages the publisher settled
// successfully (core: accepted by nats.go; JetStream: acknowledged).
func (b *Bridge) Published() uint64 {
	if s, ok := b.pub.Publisher.(interface{ Stats() sink.Stats }); ok {
		return s.Stats().Published
	}
	return 0
}

func apiHost(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	return u
}

func addrString(a net.Addr) string {
	if a == nil {
		return "disabled"
	}
	return a.String()
}
