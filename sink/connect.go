package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultReconnectBufSize bounds what nats.go buffers while reconnecting (bytes).
const DefaultReconnectBufSize = 8 << 20

// ConnectOptions says how to reach NATS. At most one authentication method may be set:
// CredsFile, NKeyFile, Token, or User with Password.
type ConnectOptions struct {
	// URLs is a comma-separated list of servers; empty means nats.DefaultURL. It may hold
	// user:password, which is never logged.
	URLs string
	// Name is the connection name shown by the server.
	Name string
	// CredsFile is a user JWT + nkey seed file (nats.UserCredentials).
	CredsFile string
	// NKeyFile is a file holding a user nkey seed (nats.NkeyOptionFromSeed).
	NKeyFile string
	// Token is an authentication token.
	Token string
	// User and Password are user/password credentials.
	User, Password string
	// TLSCA is a PEM file of CAs that sign the server's certificate.
	TLSCA string
	// TLSCert and TLSKey are a PEM client certificate and its key (both or neither).
	TLSCert, TLSKey string
	// ReconnectWait is the pause between reconnect rounds; 0 means nats.go's default (2 s).
	ReconnectWait time.Duration
	// ReconnectBufSize bounds, in bytes, what nats.go holds while reconnecting; 0 means
	// DefaultReconnectBufSize. When it is full, Core.Publish blocks until reconnected.
	ReconnectBufSize int
	// Logger receives connection state changes; nil discards them.
	Logger *slog.Logger
}

// Validate checks the options without touching the network or the files.
func (o ConnectOptions) Validate() error {
	urls := splitURLs(o.URLs)
	if len(urls) == 0 && strings.TrimSpace(o.URLs) != "" {
		return fmt.Errorf("%w: no server in URL list", ErrInvalidOptions)
	}
	for i, u := range urls {
		if !strings.Contains(u, "://") {
			u = "nats://" + u
		}
		// The parse error is not wrapped: it would quote the URL, password included.
		if pu, err := url.Parse(u); err != nil || pu.Host == "" {
			return fmt.Errorf("%w: server URL number %d is not a valid URL", ErrInvalidOptions, i+1)
		}
	}
	methods := 0
	for _, set := range []bool{o.CredsFile != "", o.NKeyFile != "", o.Token != "", o.User != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		return fmt.Errorf("%w: more than one of creds file, nkey file, token and user/password set", ErrInvalidOptions)
	}
	if o.Password != "" && o.User == "" {
		return fmt.Errorf("%w: password set without user", ErrInvalidOptions)
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return fmt.Errorf("%w: TLS client certificate and key must be set together", ErrInvalidOptions)
	}
	if o.ReconnectWait < 0 {
		return fmt.Errorf("%w: negative reconnect wait", ErrInvalidOptions)
	}
	if o.ReconnectBufSize < 0 {
		return fmt.Errorf("%w: negative reconnect buffer size", ErrInvalidOptions)
	}
	return nil
}

func splitURLs(s string) []string {
	var out []string
	for u := range strings.SplitSeq(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// Connect dials NATS and returns a connection that reconnects forever
// (MaxReconnects(-1)) and buffers at most ReconnectBufSize bytes while away.
//
// The first attempt decides what happens:
//   - it succeeds: the connection is returned;
//   - every server is unreachable (connection refused, timeout, DNS, reset): the daemon
//     must still start, so Connect logs it and returns a connection that keeps trying in
//     the background (RetryOnFailedConnect); Ready reports it as not ready meanwhile;
//   - anything else (authorization violation, expired or revoked credentials, TLS
//     verification, unreadable credentials): Connect returns that error, wrapped, so a
//     configuration mistake is reported at start instead of retried forever.
//
// Connect returns ctx.Err() if ctx ends first. State changes (disconnected, reconnected,
// closed, the first failed reconnect attempt, each distinct asynchronous error) are
// logged once each; URLs are logged redacted and credentials never.
func Connect(ctx context.Context, o ConnectOptions) (*nats.Conn, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	opts, err := o.natsOptions()
	if err != nil {
		return nil, err
	}
	nc, err := connectCtx(ctx, opts)
	if err == nil {
		o.logger().Info("nats connected", "url", nc.ConnectedUrlRedacted())
		return nc, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if !unreachable(err) {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	o.logger().Warn("nats not reachable, retrying in the background", "error", err)
	opts.RetryOnFailedConnect = true
	nc, err = connectCtx(ctx, opts)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	return nc, nil
}

// connectCtx runs opts.Connect, which does not take a context, and gives up when ctx
// ends (closing the connection if it arrives later).
func connectCtx(ctx context.Context, opts nats.Options) (*nats.Conn, error) {
	type result struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := opts.Connect()
		ch <- result{nc, err}
	}()
	select {
	case r := <-ch:
		return r.nc, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// unreachable reports whether a first-connect error means "no server answered" (worth
// retrying in the background) rather than a refusal or a configuration problem.
func unreachable(err error) bool {
	var netErr net.Error
	switch {
	case errors.Is(err, nats.ErrNoServers),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.As(err, &netErr):
		return true
	}
	return false
}

func (o ConnectOptions) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// natsOptions builds nats.go options; it reads the nkey seed file.
func (o ConnectOptions) natsOptions() (nats.Options, error) {
	opts := nats.GetDefaultOptions()
	opts.Servers = splitURLs(o.URLs)
	if len(opts.Servers) == 0 {
		opts.Servers = []string{nats.DefaultURL}
	}
	opts.Name = o.Name
	opts.MaxReconnect = -1
	opts.ReconnectBufSize = DefaultReconnectBufSize
	if o.ReconnectBufSize > 0 {
		opts.ReconnectBufSize = o.ReconnectBufSize
	}
	if o.ReconnectWait > 0 {
		opts.ReconnectWait = o.ReconnectWait
	}

	var extra []nats.Option
	switch {
	case o.CredsFile != "":
		extra = append(extra, nats.UserCredentials(o.CredsFile))
	case o.NKeyFile != "":
		opt, err := nats.NkeyOptionFromSeed(o.NKeyFile)
		if err != nil {
			return opts, fmt.Errorf("nats nkey file %s: %w", o.NKeyFile, err)
		}
		extra = append(extra, opt)
	case o.Token != "":
		extra = append(extra, nats.Token(o.Token))
	case o.User != "":
		extra = append(extra, nats.UserInfo(o.User, o.Password))
	}
	if o.TLSCA != "" {
		extra = append(extra, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" {
		extra = append(extra, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	sl := &stateLog{log: o.logger()}
	extra = append(extra,
		nats.ConnectHandler(sl.connected),
		nats.ReconnectHandler(sl.reconnected),
		nats.DisconnectErrHandler(sl.disconnected),
		nats.ReconnectErrHandler(sl.reconnectFailed),
		nats.ClosedHandler(sl.closed),
		nats.ErrorHandler(sl.asyncError),
		nats.LameDuckModeHandler(sl.lameDuck),
	)
	for _, apply := range extra {
		if err := apply(&opts); err != nil {
			return opts, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
	}
	return opts, nil
}

// stateLog logs connection state changes once each, not once per attempt or per
// message.
type stateLog struct {
	log *slog.Logger

	mu                 sync.Mutex
	reconnectErrLogged bool
	lastAsync          string
}

func (s *stateLog) reset() {
	s.mu.Lock()
	s.reconnectErrLogged = false
	s.lastAsync = ""
	s.mu.Unlock()
}

func (s *stateLog) connected(nc *nats.Conn) {
	s.reset()
	s.log.Info("nats connected", "url", nc.ConnectedUrlRedacted())
}

func (s *stateLog) reconnected(nc *nats.Conn) {
	s.reset()
	s.log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
}

func (s *stateLog) disconnected(nc *nats.Conn, err error) {
	if nc.IsClosed() {
		return // closed logs it
	}
	s.log.Warn("nats disconnected", "error", err)
}

func (s *stateLog) reconnectFailed(_ *nats.Conn, err error) {
	s.mu.Lock()
	first := !s.reconnectErrLogged
	s.reconnectErrLogged = true
	s.mu.Unlock()
	if first {
		s.log.Warn("nats reconnect failed, still trying", "error", err)
		return
	}
	s.log.Debug("nats reconnect failed, still trying", "error", err)
}

func (s *stateLog) closed(nc *nats.Conn) {
	if err := nc.LastError(); err != nil {
		s.log.Warn("nats connection closed", "error", err)
		return
	}
	s.log.Info("nats connection closed")
}

func (s *stateLog) asyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	if err == nil {
		return
	}
	msg := err.Error()
	s.mu.Lock()
	repeat := msg == s.lastAsync
	s.lastAsync = msg
	s.mu.Unlock()
	if repeat {
		return
	}
	if sub != nil {
		s.log.Warn("nats async error", "error", err, "subject", sub.Subject)
		return
	}
	s.log.Warn("nats async error", "error", err)
}

func (s *stateLog) lameDuck(nc *nats.Conn) {
	s.log.Info("nats server entering lame duck mode", "url", nc.ConnectedUrlRedacted())
}

// Ready returns nil when nc is connected and usable for publishing, otherwise an error
// wrapping ErrNotConnected that says why (reconnecting, draining, closed, with the last
// connection error when there is one).
func Ready(nc *nats.Conn) error {
	if nc == nil {
		return fmt.Errorf("%w: no connection", ErrNotConnected)
	}
	st := nc.Status()
	if st == nats.CONNECTED {
		return nil
	}
	state := strings.ToLower(st.String())
	if err := nc.LastError(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotConnected, state, err)
	}
	return fmt.Errorf("%w: %s", ErrNotConnected, state)
}
