package sink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/datacore-bridge/datacore-bridge/internal/backoff"
	"github.com/datacore-bridge/datacore-bridge/internal/redact"
)

// DefaultReconnectBufSize bounds what nats.go buffers while reconnecting (bytes).
const DefaultReconnectBufSize = 8 << 20

// DefaultMaxAuthRetryWait bounds the pause between attempts while the server refuses
// the credentials.
const DefaultMaxAuthRetryWait = 30 * time.Second

// ConnectOptions says how to reach NATS. At most one authentication method may be set:
// CredsFile, NKeyFile, Token, or User with Password (both or neither), and TLSCert with
// TLSKey (both or neither). Validate checks these rules, the one place they live.
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
	// MaxAuthRetryWait bounds the pause between attempts while the server refuses the
	// credentials; the pause starts at ReconnectWait and doubles. 0 means
	// DefaultMaxAuthRetryWait.
	MaxAuthRetryWait time.Duration
	// ReconnectBufSize bounds, in bytes, what nats.go holds while reconnecting; 0 means
	// DefaultReconnectBufSize. When it is full, Core.Publish blocks until reconnected.
	ReconnectBufSize int
	// Logger receives connection state changes; nil discards them.
	Logger *slog.Logger
	// AuthHint, when set, is the hint logged when the server refuses the
	// credentials (e.g. naming the settings that hold them); empty means a hint
	// naming the authentication method in use in these options' terms.
	AuthHint string
}

// Validate checks the options without touching the network or the files. An error
// about one field is an *OptionError; every error wraps ErrInvalidOptions.
func (o ConnectOptions) Validate() error {
	urls := splitURLs(o.URLs)
	if len(urls) == 0 && strings.TrimSpace(o.URLs) != "" {
		return fmt.Errorf("%w: no server in URL list", ErrInvalidOptions)
	}
	for i, u := range urls {
		if err := checkServerURL(u); err != nil {
			return &OptionError{Option: "URLs", Err: fmt.Errorf("%w: server URL number %d (%s): %w", ErrInvalidOptions, i+1, redact.URL(u), err)}
		}
	}
	// At most one way to authenticate; a password needs a user and a user a
	// password; a client certificate needs its key and the key its certificate.
	auth := []struct {
		option string
		set    bool
	}{
		{"CredsFile", o.CredsFile != ""},
		{"NKeyFile", o.NKeyFile != ""},
		{"Token", o.Token != ""},
		{"User", o.User != "" || o.Password != ""},
	}
	first := ""
	for _, a := range auth {
		if !a.set {
			continue
		}
		if first != "" {
			return &OptionError{Option: a.option, Other: first,
				Err: fmt.Errorf("%w: %s %w with %s: choose one way to authenticate", ErrInvalidOptions, a.option, ErrConflictingOptions, first)}
		}
		first = a.option
	}
	pairs := []struct{ option, other string }{
		{"User", "Password"}, {"Password", "User"}, {"TLSCert", "TLSKey"}, {"TLSKey", "TLSCert"},
	}
	for _, p := range pairs {
		if o.field(p.option) == "" && o.field(p.other) != "" {
			return &OptionError{Option: p.option, Other: p.other,
				Err: fmt.Errorf("%w: %s %w with %s", ErrInvalidOptions, p.option, ErrMissingOption, p.other)}
		}
	}
	if o.ReconnectWait < 0 {
		return fmt.Errorf("%w: negative reconnect wait", ErrInvalidOptions)
	}
	if o.ReconnectBufSize < 0 {
		return fmt.Errorf("%w: negative reconnect buffer size", ErrInvalidOptions)
	}
	if o.MaxAuthRetryWait < 0 {
		return fmt.Errorf("%w: negative auth retry wait", ErrInvalidOptions)
	}
	return nil
}

// field returns the value of one of the string options named in OptionError.
func (o ConnectOptions) field(name string) string {
	switch name {
	case "User":
		return o.User
	case "Password":
		return o.Password
	case "TLSCert":
		return o.TLSCert
	case "TLSKey":
		return o.TLSKey
	}
	return ""
}

// checkServerURL reports why u cannot name a NATS server: it does not parse, has no
// host, or a port that is not a number from 1 to 65535.
func checkServerURL(u string) error {
	if !strings.Contains(u, "://") {
		u = "nats://" + u
	}
	pu, err := url.Parse(u)
	if err != nil {
		// Not wrapped: url's error quotes the URL, credentials included.
		return errors.New("not a valid URL")
	}
	if pu.Hostname() == "" {
		return errors.New("no host")
	}
	if p := pu.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a number from 1 to 65535", p)
		}
	} else if strings.HasSuffix(pu.Host, ":") {
		return errors.New("empty port")
	}
	return nil
}

// OptionError says which ConnectOptions field is wrong (its Go name, e.g. "TLSCA"),
// so that a caller can name its own setting for it.
type OptionError struct {
	// Option is the field's name: URLs, CredsFile, NKeyFile, Token, User,
	// Password, TLSCA, TLSCert or TLSKey.
	Option string
	// Other is, for ErrConflictingOptions, the field set before Option that
	// it cannot be combined with and, for ErrMissingOption, the field that
	// needs Option; else empty.
	Other string
	// Err says what is wrong; it wraps ErrInvalidOptions.
	Err error
}

// Error returns the field's name and what is wrong.
func (e *OptionError) Error() string { return e.Option + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *OptionError) Unwrap() error { return e.Err }

// CheckFiles reads the files the options name and checks that each can be used: the
// TLS CA file holds at least one PEM certificate, the TLS client certificate and key
// load as a pair, the nkey file holds a user seed and the creds file a user JWT and
// its seed. It returns an *OptionError naming the first field that cannot work. Its
// errors never quote a file's content.
func (o ConnectOptions) CheckFiles() error {
	if o.TLSCA != "" {
		pem, err := os.ReadFile(o.TLSCA)
		if err != nil {
			return optionErr("TLSCA", "TLS CA file: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return optionErr("TLSCA", "TLS CA file %s holds no PEM certificate", o.TLSCA)
		}
	}
	if o.TLSCert != "" || o.TLSKey != "" {
		for _, f := range []struct{ option, path string }{{"TLSCert", o.TLSCert}, {"TLSKey", o.TLSKey}} {
			if _, err := os.Stat(f.path); err != nil {
				return optionErr(f.option, "TLS client file: %w", err)
			}
		}
		if _, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey); err != nil {
			// Which of the two is wrong: the certificate if it holds no certificate.
			option := "TLSKey"
			if certPEM, rerr := os.ReadFile(o.TLSCert); rerr != nil || !x509.NewCertPool().AppendCertsFromPEM(certPEM) {
				option = "TLSCert"
			}
			return optionErr(option, "TLS client certificate %s and key %s do not load as a pair: %w", o.TLSCert, o.TLSKey, err)
		}
	}
	if o.NKeyFile != "" {
		if _, err := nats.NkeyOptionFromSeed(o.NKeyFile); err != nil {
			return optionErr("NKeyFile", "nkey seed file %s: %w", o.NKeyFile, err)
		}
	}
	if o.CredsFile != "" {
		data, err := os.ReadFile(o.CredsFile)
		if err != nil {
			return optionErr("CredsFile", "creds file: %w", err)
		}
		token, err := jwt.ParseDecoratedJWT(data)
		if err == nil {
			_, err = jwt.DecodeUserClaims(token)
		}
		if err != nil {
			return optionErr("CredsFile", "creds file %s holds no valid user JWT: %w", o.CredsFile, err)
		}
		kp, err := nkeys.ParseDecoratedNKey(data)
		if err != nil {
			return optionErr("CredsFile", "creds file %s holds no nkey seed: %w", o.CredsFile, err)
		}
		kp.Wipe()
	}
	return nil
}

func optionErr(option, format string, args ...any) *OptionError {
	return &OptionError{Option: option, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...)}
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
// (MaxReconnects(-1), and nats.go's abort after the same authorization error twice
// switched off) and buffers at most ReconnectBufSize bytes while away.
//
// The first attempt decides what happens:
//   - it succeeds: the connection is returned;
//   - every server is unreachable (connection refused, timeout, DNS, reset): the daemon
//     must still start, so Connect logs it and returns a connection that keeps trying in
//     the background (RetryOnFailedConnect); Ready reports it as not ready meanwhile;
//   - the server refuses the credentials (authorization violation, expired or revoked
//     credentials): Connect logs it once as an error saying what to check and returns a
//     connection that keeps trying in the background, waiting longer after each refusal
//     (up to MaxAuthRetryWait), so that fixing the credentials on the server side needs
//     no restart; Ready reports the refusal meanwhile;
//   - anything else (TLS verification, an unreadable credentials file): Connect returns
//     that error, wrapped, so a configuration mistake is reported at start.
//
// Options that cannot work at all (unreadable nkey seed, TLS or CA files) are reported
// before any attempt. Connect returns ctx.Err() if ctx ends first. State changes
// (disconnected, reconnected, closed, the first failed reconnect attempt, each distinct
// asynchronous error) are logged once each; URLs are logged redacted and credentials never.
func Connect(ctx context.Context, o ConnectOptions) (*nats.Conn, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := o.CheckFiles(); err != nil {
		return nil, err
	}
	scrub := redact.NewSecrets(o.secretsOf()...)
	sl := &stateLog{log: o.logger(), authHint: o.authHint(), scrub: scrub}
	opts, err := o.natsOptions(sl)
	if err != nil {
		return nil, err
	}
	nc, err := connectCtx(ctx, opts)
	if err == nil {
		return nc, nil // the connect handler logs it
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	switch {
	case unreachable(err):
		o.logger().Warn("nats not reachable, retrying in the background", "error", scrub.Err(err))
	case IsAuthError(err):
		sl.authRefused(err)
	default:
		return nil, fmt.Errorf("connect to nats: %w", scrub.Err(err))
	}
	opts.RetryOnFailedConnect = true
	nc, err = connectCtx(ctx, opts)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("connect to nats: %w", scrub.Err(err))
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

// authErrors are the server's refusals of a client's credentials.
var authErrors = []error{nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked, nats.ErrAccountAuthExpired}

// authErrorTexts match the same refusals by text: nats.go reports some of them (such as
// "user authentication expired") with an error that no sentinel matches.
var authErrorTexts = []string{"authorization violation", "authentication expired", "authentication revoked"}

// IsAuthError reports whether err is the NATS server refusing the client's credentials:
// an authorization violation, or expired or revoked credentials.
func IsAuthError(err error) bool {
	if err == nil {
		return false
	}
	for _, target := range authErrors {
		if errors.Is(err, target) {
			return true
		}
	}
	text := strings.ToLower(err.Error())
	for _, t := range authErrorTexts {
		if strings.Contains(text, t) {
			return true
		}
	}
	return false
}

// authHint says what to check when the server refuses the credentials.
func (o ConnectOptions) authHint() string {
	switch {
	case o.AuthHint != "":
		return o.AuthHint
	case o.CredsFile != "":
		return "check the NATS credentials file: its user JWT must be signed by an account the server trusts and not be expired or revoked"
	case o.NKeyFile != "":
		return "check the NATS nkey seed file: its public key must be a user in the server's configuration"
	case o.Token != "":
		return "check the NATS token against the server's authorization token"
	case o.User != "":
		return "check the NATS user and password against the server's users"
	}
	return "the server requires authentication and none is configured: set a NATS user and password, a token, a credentials file or an nkey seed file"
}

func (o ConnectOptions) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// natsOptions builds nats.go options whose handlers report to sl; it reads the nkey
// seed and TLS files.
func (o ConnectOptions) natsOptions(sl *stateLog) (nats.Options, error) {
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
	sl.authMaxWait = o.MaxAuthRetryWait
	if sl.authMaxWait <= 0 {
		sl.authMaxWait = DefaultMaxAuthRetryWait
	}
	// Without this nats.go closes the connection for good the second time a server
	// gives the same authorization error, and the daemon would run on without NATS.
	opts.IgnoreAuthErrorAbort = true

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
	sl.wait = opts.ReconnectWait
	sl.jitter = opts.ReconnectJitter
	if opts.Secure || opts.TLSConfig != nil {
		sl.jitter = opts.ReconnectJitterTLS
	}
	opts.CustomReconnectDelayCB = sl.reconnectDelay
	return opts, nil
}

// stateLog logs connection state changes once each, not once per attempt or per
// message, and paces reconnect attempts.
type stateLog struct {
	log         *slog.Logger
	authHint    string        // what to check when the server refuses the credentials
	wait        time.Duration // pause between reconnect rounds (nats.go's ReconnectWait)
	jitter      time.Duration // upper bound of the random delay added to wait
	authMaxWait time.Duration // bound of the growing pause while credentials are refused
	scrub       scrubber      // removes credentials from logged error texts

	mu                 sync.Mutex
	reconnectErrLogged bool
	lastAsync          string
	authFailing        bool // the server refused the credentials since the last connect
}

func (s *stateLog) reset() {
	s.mu.Lock()
	s.reconnectErrLogged = false
	s.lastAsync = ""
	s.authFailing = false
	s.mu.Unlock()
}

// authRefused logs, once until the next successful connect, that the server refused
// the credentials, and makes reconnect attempts back off.
func (s *stateLog) authRefused(err error) {
	s.mu.Lock()
	first := !s.authFailing
	s.authFailing = true
	// The retry loop reports the same refusal again as a failed reconnect attempt.
	s.reconnectErrLogged = true
	s.mu.Unlock()
	if first {
		s.log.Error("nats refused the credentials; retrying in the background", "error", s.scrub.Err(err), "hint", s.authHint)
		return
	}
	s.log.Debug("nats refused the credentials; retrying in the background", "error", s.scrub.Err(err))
}

// reconnectDelay is nats.go's CustomReconnectDelayCB: the pause after the attempts-th
// round over the server list. It is nats.go's usual wait plus jitter, except while the
// server refuses the credentials: then it doubles each round, up to authMaxWait (the
// cap of internal/backoff, plus nats.go's jitter), since retrying quickly cannot fix
// credentials and only fills the server's log.
func (s *stateLog) reconnectDelay(attempts int) time.Duration {
	s.mu.Lock()
	auth := s.authFailing
	s.mu.Unlock()
	d := s.wait
	if auth && d > 0 {
		d = backoff.Policy{Min: s.wait, Max: s.authMaxWait}.Cap(attempts - 1)
	}
	if s.jitter > 0 {
		d += rand.N(s.jitter)
	}
	return d
}

func (s *stateLog) connected(nc *nats.Conn) {
	s.reset()
	s.log.Info("nats connected", "url", redact.URL(nc.ConnectedUrl()))
}

func (s *stateLog) reconnected(nc *nats.Conn) {
	s.reset()
	s.log.Info("nats reconnected", "url", redact.URL(nc.ConnectedUrl()))
}

func (s *stateLog) disconnected(nc *nats.Conn, err error) {
	if nc.IsClosed() {
		return // closed logs it
	}
	s.log.Warn("nats disconnected", "error", s.scrub.Err(err))
}

func (s *stateLog) reconnectFailed(_ *nats.Conn, err error) {
	s.mu.Lock()
	first := !s.reconnectErrLogged
	s.reconnectErrLogged = true
	s.mu.Unlock()
	if first {
		s.log.Warn("nats reconnect failed, still trying", "error", s.scrub.Err(err))
		return
	}
	s.log.Debug("nats reconnect failed, still trying", "error", s.scrub.Err(err))
}

func (s *stateLog) closed(nc *nats.Conn) {
	if err := nc.LastError(); err != nil {
		s.log.Warn("nats connection closed", "error", s.scrub.Err(err))
		return
	}
	s.log.Info("nats connection closed")
}

func (s *stateLog) asyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	if err == nil {
		return
	}
	if sub == nil && IsAuthError(err) {
		// A reconnect refused by the server (credentials changed or revoked).
		s.authRefused(err)
		return
	}
	err = s.scrub.Err(err)
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
	s.log.Info("nats server entering lame duck mode", "url", redact.URL(nc.ConnectedUrl()))
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
