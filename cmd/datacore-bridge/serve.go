package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/httpapi"
	"github.com/datacore-bridge/datacore-bridge/metrics"
	"github.com/datacore-bridge/datacore-bridge/sink"
)

// serveCommand runs the bridge as configured by the environment until ctx is
// done (a first signal), then shuts down; force done (a second signal) cuts
// the shutdown short. It exits 1 when the shutdown abandoned messages or, not
// forced, did not finish in time.
func serveCommand(ctx, force context.Context, stdout, stderr io.Writer) int {
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		fmt.Fprintln(stderr, "run 'datacore-bridge -h' for every variable")
		return 2
	}
	log, err := newLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	b, err := start(ctx, cfg, log, bridgeExtras{})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	<-ctx.Done()
	stopWatch := context.AfterFunc(force, func() {
		log.Warn("second signal: stopping now, abandoning what is not settled")
	})
	err = b.shutdownUntil(force)
	stopWatch()
	if err != nil {
		log.Error("shutdown incomplete", "err", err)
		return 1
	}
	return 0
}

// newLogger builds the slog logger that DATACORE_LOG_LEVEL and DATACORE_LOG_FORMAT ask for.
func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("DATACORE_LOG_LEVEL: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("DATACORE_LOG_FORMAT: must be json or text, got %q", format)
}

// NATS reconnection settings (see start).
const (
	natsReconnectWait = 250 * time.Millisecond
	natsReconnectBuf  = sink.DefaultReconnectBufSize
)

// bridgeExtras are settings the demo and tests need that no variable exposes.
type bridgeExtras struct {
	connLifetime time.Duration // the emulator's connection lifetime; 0: the service's 24 h
	minBackoff   time.Duration
	maxBackoff   time.Duration
	failedRetry  time.Duration
	metrics      *metrics.Metrics
}

// bridge is a running bridge: NATS, the publisher, the supervisor and the HTTP server.
type bridge struct {
	cfg      *config.Config
	log      *slog.Logger
	m        *metrics.Metrics
	nc       *nats.Conn
	pub      sink.Publisher
	pubReady func() error // the publisher's health: connection, then publishing
	closePub func(context.Context) error
	sup      *fixtures.Supervisor
	supDone  chan struct{}
	stopSup  context.CancelFunc
	http     *http.Server
	httpAddr net.Addr
	httpDone chan struct{}

	ensureStream func(context.Context)  // with DATACORE_STREAM
	streamErr    atomic.Pointer[errBox] // why the stream is not ensured; nil once it is
	bgDone       sync.WaitGroup
}

type errBox struct{ err error }

// natsReady is nil when NATS is connected, with DATACORE_STREAM the stream
// has been created or checked, and the publisher is not stuck (e.g. JetStream
// publishes that no stream acknowledges).
func (b *bridge) natsReady() error {
	err := b.pubReady()
	if errors.Is(err, sink.ErrNotConnected) {
		return err
	}
	if e := b.streamErr.Load(); e != nil {
		return e.err
	}
	return err
}

// keepEnsuringStream creates or updates the configured stream, retrying with
// backoff until it succeeds or ctx is done. Publishes before then are
// retried by the JetStream publisher, which waits for the stream.
func (b *bridge) keepEnsuringStream(ctx context.Context, js jetstream.JetStream) {
	wait := 250 * time.Millisecond
	logged := ""
	for {
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := sink.EnsureStream(callCtx, js, b.cfg.Stream, b.cfg.SubjectPrefix)
		cancel()
		if err == nil {
			b.streamErr.Store(nil)
			b.log.Info("stream ready", "stream", b.cfg.Stream, "subjects", b.cfg.SubjectPrefix+".>")
			return
		}
		if ctx.Err() != nil {
			return
		}
		err = fmt.Errorf("stream %s: %w", b.cfg.Stream, err)
		b.streamErr.Store(&errBox{err})
		if err.Error() != logged {
			logged = err.Error()
			b.log.Error("cannot create or update the JetStream stream; retrying (check DATACORE_STREAM, DATACORE_SUBJECT_PREFIX and the account's JetStream limits)", "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// buffered is how many bytes nats.go holds for the server, or -1 if unknown.
func buffered(nc *nats.Conn) int {
	n, err := nc.Buffered()
	if err != nil {
		return -1
	}
	return n
}

// start connects to NATS, starts the supervisor with the configured fixtures
// and venues and serves HTTP. The bridge runs until shutdown is called; ctx
// bounds only the start.
func start(ctx context.Context, cfg *config.Config, log *slog.Logger, x bridgeExtras) (*bridge, error) {
	m := x.metrics
	if m == nil {
		m = metrics.New()
	}
	b := &bridge{cfg: cfg, log: log, m: m}

	nc, err := sink.Connect(ctx, sink.ConnectOptions{
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
		Logger:           log.With("component", "nats"),

		AuthHint: cfg.NATSAuthHint(),
	})
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	b.nc = nc

	if cfg.JetStream {
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("jetstream: %w", err)
		}
		if cfg.Stream != "" {
			// NATS may be away or refusing credentials at start: the stream is
			// ensured in the background and /readyz says so until it is.
			b.streamErr.Store(&errBox{errors.New("stream " + cfg.Stream + " not ensured yet")})
			b.ensureStream = func(ctx context.Context) { b.keepEnsuringStream(ctx, js) }
		}
		hint := "set DATACORE_STREAM or create a stream over " + cfg.SubjectPrefix + ".>"
		if cfg.Stream != "" {
			hint = "the stream " + cfg.Stream + " (DATACORE_STREAM) should capture " + cfg.SubjectPrefix + ".>: check that it was not deleted or changed"
		}
		jp, err := sink.NewJetStream(nc, sink.JetStreamOptions{
			MaxPending:   cfg.MaxInflight,
			Logger:       log.With("component", "jetstream"),
			OnRetry:      m.PublishRetries.Inc,
			NoStreamHint: hint,
		})
		if err != nil {
			nc.Close()
			return nil, err
		}
		b.pub, b.pubReady, b.closePub = jp, jp.Ready, jp.Close
	} else {
		cp := sink.NewCore(nc, sink.CoreOptions{Logger: log.With("component", "nats"), OnRetry: m.PublishRetries.Inc})
		b.pub, b.pubReady = cp, cp.Ready
		b.closePub = func(ctx context.Context) error {
			defer cp.Close()
			if !nc.IsConnected() {
				// Nothing can be flushed; what nats.go buffered for the
				// reconnect is lost with the connection.
				n := buffered(nc)
				log.Warn("NATS is not connected at shutdown; messages buffered for the reconnect are lost",
					"buffered_bytes", n)
				if n > 0 {
					return fmt.Errorf("%w: %d bytes buffered for the reconnect", sink.ErrAbandoned, n)
				}
				return nil
			}
			return cp.Flush(ctx)
		}
	}

	var token func(context.Context) (string, error)
	if cfg.OAuthTokenURL != "" {
		token = access.OAuth2Token(context.Background(), cfg.OAuthTokenURL, cfg.OAuthClientID, cfg.OAuthClientSecret, cfg.OAuthAudience)
	}
	ac, err := access.New(access.Options{
		BaseURL: cfg.APIURL,
		Credentials: access.Credentials{
			CredentialID:      cfg.CredentialID,
			CredentialSecret:  cfg.CredentialSecret,
			UserIdentityToken: cfg.UserIdentityToken,
			ApplicationID:     cfg.ApplicationID,
		},
		Token: token,
		// One client for every stream: the pace is process-wide.
		Rate:  rate.Limit(cfg.AccessRate),
		Burst: cfg.AccessBurst,

		UnauthorizedHint: cfg.UnauthorizedHint(),
	})
	if err != nil {
		nc.Close()
		return nil, err
	}

	sup, err := fixtures.New(fixtures.Options{
		Access:         ac,
		Publisher:      b.pub,
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
		MaxPayload:     nc.MaxPayload,
		ConnLifetime:   x.connLifetime,
		MinBackoff:     x.minBackoff,
		MaxBackoff:     x.maxBackoff,
		FailedRetry:    x.failedRetry,
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	b.sup = sup
	for _, id := range cfg.Fixtures {
		if _, err := sup.Follow(access.Fixture, id); err != nil {
			nc.Close()
			return nil, fmt.Errorf("DATACORE_FIXTURES: %w", err)
		}
	}
	for _, id := range cfg.Venues {
		if _, err := sup.Follow(access.Venue, id); err != nil {
			nc.Close()
			return nil, fmt.Errorf("DATACORE_VENUES: %w", err)
		}
	}

	if cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("DATACORE_HTTP_ADDR: %w", err)
		}
		b.httpAddr = ln.Addr()
		handler := httpapi.New(httpapi.Options{
			Supervisor: sup,
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

	supCtx, stopSup := context.WithCancel(context.Background())
	b.stopSup = stopSup
	b.supDone = make(chan struct{})
	go func() {
		defer close(b.supDone)
		_ = sup.Run(supCtx)
	}()
	go b.watchNATS(supCtx)
	if b.ensureStream != nil {
		b.bgDone.Add(1)
		go func() {
			defer b.bgDone.Done()
			b.ensureStream(supCtx)
		}()
	}

	log.Info("started", "fixtures", len(cfg.Fixtures), "venues", len(cfg.Venues),
		"api_host", apiHost(cfg.APIURL), "jetstream", cfg.JetStream, "http", addrString(b.httpAddr))
	return b, nil
}

// dedupWindow maps the configured window to the supervisor's: 0 disables.
func dedupWindow(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// watchNATS keeps the nats_connected gauge current.
func (b *bridge) watchNATS(ctx context.Context) {
	ch := b.nc.StatusChanged()
	defer b.nc.RemoveStatusListener(ch)
	set := func(s nats.Status) {
		if s == nats.CONNECTED {
			b.m.NATSConnected.Set(1)
		} else {
			b.m.NATSConnected.Set(0)
		}
	}
	set(b.nc.Status())
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-ch:
			set(s)
		}
	}
}

// shutdown is shutdownUntil without a second signal.
func (b *bridge) shutdown() error { return b.shutdownUntil(context.Background()) }

// shutdownUntil stops taking messages, finishes what is in flight, drains NATS
// and stops the HTTP server, all within cfg.ShutdownTimeout, or at once when
// force is done. Its error wraps sink.ErrAbandoned when messages were left
// unsettled (and says how many); when not forced, it is also an error that a
// step did not finish in time. Forced, only abandoned messages are an error:
// cutting the wait short is what was asked.
func (b *bridge) shutdownUntil(force context.Context) error {
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

	b.stopSup()
	select {
	case <-b.supDone:
	case <-ctx.Done():
		fail(errors.New("streams did not stop in time"))
	}
	b.bgDone.Wait()
	if err := b.closePub(ctx); errors.Is(err, sink.ErrAbandoned) {
		// NATS did not take them before the deadline (it is away, or a
		// second signal came): they are counted in messages_dropped_total
		// and logged here; a stop cannot wait for NATS forever.
		b.log.Warn("shutdown abandoned unacknowledged publishes", "err", err)
		fail(fmt.Errorf("publisher: %w", err))
	} else if err != nil {
		fail(fmt.Errorf("publisher: %w", err))
	}
	if err := drain(ctx, b.nc); err != nil {
		fail(fmt.Errorf("nats drain: %w", err))
	}
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

// drain drains nc and waits until it is closed or ctx is done.
func drain(ctx context.Context, nc *nats.Conn) error {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) {
			return nil // nothing can be drained from a connection that is down
		}
		return err
	}
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		n := buffered(nc)
		nc.Close()
		if n > 0 {
			return fmt.Errorf("%w: %d bytes not flushed to NATS: %w", sink.ErrAbandoned, n, ctx.Err())
		}
		return ctx.Err()
	}
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
