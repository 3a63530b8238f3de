package mqttclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/datacore-bridge/datacore-bridge/internal/redact"
)

const (
	// DefaultKeepAlive is the MQTT keepalive used when Options.KeepAlive is 0.
	DefaultKeepAlive = 30 * time.Second
	// DefaultConnectTimeout is used when Options.ConnectTimeout is 0.
	DefaultConnectTimeout = 10 * time.Second
	// MaxTopicsPerSubscribe is the most topic filters sent in one SUBSCRIBE
	// (the AWS IoT Core limit).
	MaxTopicsPerSubscribe = 8

	// closeQuiesce bounds how long Close waits for DISCONNECT to be written.
	closeQuiesce = 250 * time.Millisecond
	// subackFailure is the SUBACK return code for a refused topic filter.
	subackFailure = 0x80
)

// Options configures Dial.
type Options struct {
	// URL is the signed ws:// or wss:// URL. Its query is a secret: it is
	// never logged nor put in an error.
	URL string
	// ClientID is the client id that came with the grant.
	ClientID string
	// Topics are subscribed in SUBSCRIBEs of at most MaxTopicsPerSubscribe
	// filters each; duplicates are dropped.
	Topics []string
	// QoS is the subscription QoS: 0 or 1.
	QoS byte
	// KeepAlive is the MQTT keepalive, rounded down to whole seconds (at
	// least one); 0 means DefaultKeepAlive.
	KeepAlive time.Duration
	// ConnectTimeout bounds the whole of Dial: WebSocket handshake, CONNECT
	// and every SUBACK. 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ManualAck leaves acknowledging QoS 1 messages to Message.Ack; without
	// it a message is acknowledged as soon as Handler returns.
	ManualAck bool
	// Persistent connects with CleanSession false: the broker keeps the
	// session (subscriptions, unacknowledged and queued QoS 1 messages) when
	// the connection ends, and a later Dial with the same ClientID resumes
	// it, getting what was unacknowledged or sent meanwhile (with AWS IoT
	// Core, for as long as the session does not expire: an hour by default).
	// The client keeps no state of its own between Dials: each Dial uses a
	// fresh in-memory store, so the broker side is what is resumed. Default
	// false: a clean session, discarded by the broker when the connection ends.
	Persistent bool
	// Handler receives every message, one at a time and in arrival order, on
	// the MQTT client's goroutine. It may be called before Dial returns (once
	// the first SUBACK has arrived), also when Dial then fails. While it
	// blocks no further message is read, which is the backpressure on the
	// broker; but PINGRESPs are not read either, so a Handler blocked for
	// longer than about KeepAlive plus 10 s costs the connection. Required.
	Handler func(Message)
	// Logger receives the connection's log lines; nil discards them.
	Logger *slog.Logger
}

// Conn is one MQTT connection to one signed URL. Its methods are safe for
// concurrent use.
type Conn struct {
	opts   Options
	host   string
	red    redact.Secrets
	log    *slog.Logger
	client mqtt.Client
	// store is paho's in-memory store of the connection: a QoS 1 message is
	// kept there from its arrival until Message.Ack sends its PUBACK (or
	// the connection ends with it); see storedInbound.
	store *mqtt.MemoryStore

	// dialCtx is Dial's context (with ConnectTimeout); it is only used while
	// Dial runs, by the socket dial and the on-connect subscriber.
	dialCtx context.Context

	mu          sync.Mutex
	connectedAt time.Time // zero until CONNACK accepted
	sock        *wsConn   // the open socket, nil until dialled
	dialErr     error     // why the socket could not be opened, kept as typed
	aborted     bool      // Dial gave up: a socket opened now must be closed

	subscribed     chan error // result of subscribing, from the on-connect handler
	sessionPresent bool       // CONNACK's session present flag; set before Dial returns

	// Delivery bookkeeping, for Idle: Handler calls running, QoS 1 messages
	// handed to the Handler and not yet acknowledged (ManualAck), and when a
	// message last arrived or was acknowledged (unix nanos). activity is
	// signalled (without blocking) whenever one of them changes.
	handling     atomic.Int32
	unacked      atomic.Int64
	lastActivity atomic.Int64
	activity     chan struct{}

	closing   atomic.Bool // Close (or a failing Dial) is tearing down
	closeOnce sync.Once
	endOnce   sync.Once
	done      chan struct{}
	err       error // set before done is closed
}

// Dial connects to opts.URL, subscribes to every topic and returns once the
// broker has acknowledged all subscriptions. ctx bounds Dial only, not the
// connection it returns. On failure the connection is closed and the error
// wraps one of: *HandshakeError (ErrHandshakeRefused, ErrHandshakeFailed),
// ErrConnectRefused, ErrSubscribeRefused, ErrConnectionLost, ctx's error or
// context.DeadlineExceeded for ConnectTimeout, or a network error.
func Dial(ctx context.Context, opts Options) (*Conn, error) {
	u, err := opts.check()
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Conn{
		opts:       opts,
		host:       u.Host,
		red:        redact.SignedURL(u),
		log:        logger.With("host", u.Host, "client_id", opts.ClientID),
		subscribed: make(chan error, 1),
		activity:   make(chan struct{}, 1),
		done:       make(chan struct{}),
		store:      mqtt.NewMemoryStore(),
	}

	dialCtx, cancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	defer cancel()
	c.dialCtx = dialCtx

	// paho is handed the URL without its query: it never needs it (the
	// socket is opened by openSocket) and it may print its broker URL.
	safe := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	po := mqtt.NewClientOptions().
		AddBroker(safe.String()).
		SetClientID(opts.ClientID).
		SetProtocolVersion(4). // explicit: no silent retry with 3.1 after a refused CONNACK
		SetCleanSession(!opts.Persistent).
		SetKeepAlive(opts.KeepAlive).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetOrderMatters(true).
		SetAutoAckDisabled(opts.ManualAck).
		SetConnectTimeout(opts.ConnectTimeout).
		SetWriteTimeout(opts.ConnectTimeout).
		SetStore(c.store).
		SetDefaultPublishHandler(c.onMessage).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(c.onConnectionLost).
		SetCustomOpenConnectionFn(func(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
			return c.openSocket(dialCtx)
		})
	c.client = mqtt.NewClient(po)

	if err := c.connect(ctx, dialCtx); err != nil {
		c.abort()
		c.end(err)
		c.log.Debug("mqtt dial failed", "error", err)
		return nil, err
	}
	c.log.Debug("mqtt connected", "topics", len(opts.Topics), "qos", opts.QoS)
	return c, nil
}

// check validates opts, applies defaults, and returns the parsed URL.
// Errors never contain the URL.
func (o *Options) check() (*url.URL, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error prints the URL
		}
		return nil, fmt.Errorf("mqttclient: options: invalid url: %w", redact.SignedURLString(o.URL).Err(err))
	}
	switch {
	case u.Scheme != "ws" && u.Scheme != "wss":
		return nil, fmt.Errorf("mqttclient: options: url scheme %q: want ws or wss", u.Scheme)
	case u.Host == "":
		return nil, errors.New("mqttclient: options: url has no host")
	case o.ClientID == "":
		return nil, errors.New("mqttclient: options: client id is required")
	case CheckQoS(int(o.QoS)) != nil:
		return nil, fmt.Errorf("mqttclient: options: %w", CheckQoS(int(o.QoS)))
	case o.Handler == nil:
		return nil, errors.New("mqttclient: options: handler is required")
	case o.KeepAlive < 0:
		return nil, fmt.Errorf("mqttclient: options: negative keepalive %s", o.KeepAlive)
	case o.ConnectTimeout < 0:
		return nil, fmt.Errorf("mqttclient: options: negative connect timeout %s", o.ConnectTimeout)
	}
	for _, t := range o.Topics {
		if t == "" {
			return nil, errors.New("mqttclient: options: empty topic")
		}
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.KeepAlive < time.Second {
		o.KeepAlive = time.Second // paho counts whole seconds; 0 would disable pings
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	topics := make([]string, 0, len(o.Topics))
	seen := make(map[string]bool, len(o.Topics))
	for _, t := range o.Topics {
		if !seen[t] {
			seen[t] = true
			topics = append(topics, t)
		}
	}
	o.Topics = topics
	return u, nil
}

// connect runs CONNECT and waits for the subscriptions made by onConnect.
func (c *Conn) connect(ctx, dialCtx context.Context) error {
	tok := c.client.Connect()
	select {
	case <-tok.Done():
	case <-dialCtx.Done():
		return c.ctxErr(ctx, "connect")
	}
	if err := tok.Error(); err != nil {
		c.mu.Lock()
		dialErr := c.dialErr
		c.mu.Unlock()
		if dialErr != nil {
			return dialErr // typed, already redacted; paho flattens it
		}
		if ct, ok := tok.(*mqtt.ConnectToken); ok {
			if rc := ct.ReturnCode(); rc != packets.Accepted && rc != packets.ErrNetworkError {
				return fmt.Errorf("%w: return code %d: %w", ErrConnectRefused, rc, c.red.Err(err))
			}
		}
		if dialCtx.Err() != nil || isTimeout(err) {
			// The socket deadline paho sets is ConnectTimeout too, and may
			// fire just before dialCtx's timer.
			return c.ctxErr(ctx, "connect")
		}
		return c.red.Err(fmt.Errorf("mqttclient: connect %s: %w", c.host, c.red.Err(err)))
	}
	c.mu.Lock()
	c.connectedAt = time.Now()
	c.lastActivity.Store(c.connectedAt.UnixNano()) // a resumed session's messages follow the CONNACK
	if ct, ok := tok.(*mqtt.ConnectToken); ok {
		c.sessionPresent = ct.SessionPresent()
	}
	c.mu.Unlock()
	select {
	case err := <-c.subscribed:
		return err
	case <-c.done:
		return c.Err()
	case <-dialCtx.Done():
		return c.ctxErr(ctx, "subscribe")
	}
}

// ctxErr explains why Dial's context ended: the caller's ctx, or the
// connect timeout (reported as ErrSubscribeRefused while subscribing).
func (c *Conn) ctxErr(ctx context.Context, stage string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mqttclient: %s %s: %w", stage, c.host, err)
	}
	if stage == "subscribe" {
		return fmt.Errorf("%w: no suback within %s: %w", ErrSubscribeRefused, c.opts.ConnectTimeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("mqttclient: %s %s: timed out after %s: %w", stage, c.host, c.opts.ConnectTimeout, context.DeadlineExceeded)
}

// openSocket is paho's CustomOpenConnectionFn. It keeps the typed error,
// which paho would flatten, for Dial to return.
func (c *Conn) openSocket(ctx context.Context) (net.Conn, error) {
	ws, err := dialWebSocket(ctx, c.opts.URL, c.host, c.opts.ConnectTimeout, c.red)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.dialErr = err
		return nil, err
	}
	sock := newWSConn(ws, c.socketFailed)
	if c.aborted {
		c.closing.Store(true)
		_ = sock.Close()
		c.dialErr = fmt.Errorf("mqttclient: websocket dial %s: %w", c.host, context.Canceled)
		return nil, c.dialErr
	}
	c.sock = sock
	return sock, nil
}

// abort tears down after a failed Dial: closes the socket, so that a
// CONNECT still waiting for its CONNACK fails at once, and disconnects the
// client without waiting (paho finishes the connect attempt, if one is still
// running, on its own goroutine).
func (c *Conn) abort() {
	c.closing.Store(true)
	c.mu.Lock()
	c.aborted = true
	sock := c.sock
	c.mu.Unlock()
	if sock != nil {
		_ = sock.Close()
	}
	c.client.Disconnect(0)
}

// onConnect subscribes, in batches, once CONNACK has been accepted. paho
// runs it on its own goroutine, concurrently with completing the connect
// token.
func (c *Conn) onConnect(client mqtt.Client) {
	c.subscribed <- c.subscribe(c.dialCtx, client)
}

// subscribe sends every SUBSCRIBE, then waits for each SUBACK and checks
// its return codes.
func (c *Conn) subscribe(ctx context.Context, client mqtt.Client) error {
	type pending struct {
		topics []string
		tok    mqtt.Token
	}
	var sent []pending
	for batch := range slices.Chunk(c.opts.Topics, MaxTopicsPerSubscribe) {
		if ctx.Err() != nil || c.closing.Load() {
			break // Dial reports why
		}
		filters := make(map[string]byte, len(batch))
		for _, t := range batch {
			filters[t] = c.opts.QoS
		}
		// nil callback: messages go to the default handler, exactly once
		// each, however the filters overlap.
		sent = append(sent, pending{topics: batch, tok: client.SubscribeMultiple(filters, nil)})
	}
	var refused []string
	for _, p := range sent {
		select {
		case <-p.tok.Done():
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return c.Err()
		}
		if err := p.tok.Error(); err != nil {
			return c.red.Err(fmt.Errorf("mqttclient: subscribe: %w", err))
		}
		st, ok := p.tok.(*mqtt.SubscribeToken)
		if !ok {
			continue
		}
		res := st.Result()
		for _, t := range p.topics {
			code, ok := res[t]
			switch {
			case !ok || code >= subackFailure:
				refused = append(refused, t)
			case code < c.opts.QoS:
				c.log.Warn("mqtt subscription granted a lower qos", "topic", t, "qos", code)
			}
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("%w: %d of %d topics refused: %s", ErrSubscribeRefused, len(refused), len(c.opts.Topics), strings.Join(refused, ", "))
	}
	return nil
}

// onMessage is paho's default publish handler.
func (c *Conn) onMessage(_ mqtt.Client, pm mqtt.Message) {
	if c.closing.Load() {
		return // closed: not ours to handle (and not acknowledged by us)
	}
	m := Message{Topic: pm.Topic(), Payload: pm.Payload(), QoS: pm.Qos(), Duplicate: pm.Duplicate()}
	if c.opts.ManualAck {
		m.ack = pm
		if pm.Qos() > 0 {
			m.track = &ackTracker{c: c}
			c.unacked.Add(1)
		}
	}
	c.handling.Add(1)
	c.lastActivity.Store(time.Now().UnixNano())
	defer func() {
		c.handling.Add(-1)
		c.signal()
	}()
	c.opts.Handler(m)
}

// signal notes a change of the delivery bookkeeping for Idle.
func (c *Conn) signal() {
	select {
	case c.activity <- struct{}{}:
	default:
	}
}

// acked is called once per tracked message, by its first Ack. An
// acknowledgement counts as activity: the broker may answer it with a
// message it held back for want of room.
func (c *Conn) acked() {
	c.lastActivity.Store(time.Now().UnixNano())
	c.unacked.Add(-1)
	c.signal()
}

// Unacked returns the number of QoS 1 messages handed to the Handler and not
// yet acknowledged with Message.Ack (always 0 without ManualAck).
func (c *Conn) Unacked() int { return int(c.unacked.Load()) }

// storedInbound returns how many received messages paho's store holds:
// QoS 1 messages not yet acknowledged. A message dropped by the receiver and
// acknowledged with Message.Ack leaves the store then, so a long-lived
// connection does not accumulate dropped messages.
func (c *Conn) storedInbound() int {
	n := 0
	for _, k := range c.store.All() {
		if strings.HasPrefix(k, "i.") {
			n++
		}
	}
	return n
}

// SessionPresent reports the CONNACK's session present flag: with
// Options.Persistent, whether the broker resumed an existing session.
func (c *Conn) SessionPresent() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessionPresent
}

// Unsubscribe sends UNSUBSCRIBE for every topic of the connection (in
// batches of at most MaxTopicsPerSubscribe) and waits for every UNSUBACK,
// until ctx is done. Afterwards the broker adds no new messages for this
// client; it may still deliver those it had already queued for it.
func (c *Conn) Unsubscribe(ctx context.Context) error {
	var toks []mqtt.Token
	for batch := range slices.Chunk(c.opts.Topics, MaxTopicsPerSubscribe) {
		toks = append(toks, c.client.Unsubscribe(batch...))
	}
	for _, tok := range toks {
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return fmt.Errorf("mqttclient: unsubscribe %s: %w", c.host, ctx.Err())
		case <-c.done:
			if err := c.Err(); err != nil {
				return fmt.Errorf("mqttclient: unsubscribe: %w", err)
			}
			return fmt.Errorf("mqttclient: unsubscribe: %w", ErrClosed)
		}
		if err := tok.Error(); err != nil {
			return c.red.Err(fmt.Errorf("mqttclient: unsubscribe %s: %w", c.host, c.red.Err(err)))
		}
	}
	return nil
}

// Idle waits until the connection is idle: no Handler call running, every
// QoS 1 message handed to the Handler acknowledged (with ManualAck), and
// neither a message nor an acknowledgement for at least quiet (a broker
// holding messages back at its in-flight limit sends the next ones once
// acknowledgements reach it). It returns nil then, ctx's error if ctx ends
// first, or an error wrapping ErrConnectionLost (or saying it was closed) if
// the connection ends first.
func (c *Conn) Idle(ctx context.Context, quiet time.Duration) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-c.done:
			if err := c.Err(); err != nil {
				return fmt.Errorf("mqttclient: idle: %w", err)
			}
			return fmt.Errorf("mqttclient: idle: %w", ErrClosed)
		default:
		}
		var wait <-chan time.Time
		if c.handling.Load() == 0 && c.unacked.Load() <= 0 {
			left := quiet - time.Since(time.Unix(0, c.lastActivity.Load()))
			if left <= 0 {
				return nil
			}
			if timer == nil {
				timer = time.NewTimer(left)
			} else {
				timer.Reset(left)
			}
			wait = timer.C
		}
		select {
		case <-c.activity:
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("mqttclient: idle %s: %w", c.host, ctx.Err())
		case <-c.done:
			if err := c.Err(); err != nil {
				return fmt.Errorf("mqttclient: idle: %w", err)
			}
			return fmt.Errorf("mqttclient: idle: %w", ErrClosed)
		}
	}
}

// onConnectionLost is paho's connection lost handler. paho calls it only
// after its workers stopped, which waits for a running Handler; socketFailed
// usually reports the loss first.
func (c *Conn) onConnectionLost(_ mqtt.Client, err error) {
	c.lost(err)
}

// socketFailed is called by the socket on its first I/O error, or when paho
// closes it before any.
func (c *Conn) socketFailed(err error) {
	c.lost(err)
}

// lost ends the connection with ErrConnectionLost, unless we are closing.
func (c *Conn) lost(cause error) {
	if c.closing.Load() {
		return
	}
	if cause == nil {
		cause = errors.New("unknown cause")
	}
	err := fmt.Errorf("%w: %w", ErrConnectionLost, c.red.Err(cause))
	if c.end(err) && !c.ConnectedAt().IsZero() {
		c.log.Debug("mqtt connection lost", "err", err)
	}
}

// end records why the connection ended and closes done, the first time
// only. It reports whether this call did it.
func (c *Conn) end(err error) bool {
	did := false
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.done)
		did = true
	})
	return did
}

// Done returns a channel that is closed when the connection has ended:
// lost, or closed by Close. When it was lost, messages read from the socket
// just before may still reach the Handler after Done is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended: an error wrapping ErrConnectionLost
// (with the cause) if it was lost, nil if Close ended it or it has not
// ended yet.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// ConnectedAt returns when the broker accepted CONNECT.
func (c *Conn) ConnectedAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connectedAt
}

// Close sends DISCONNECT, waits at most 250 ms for it to be written, and
// closes the connection; Done is closed when it returns. After Close the
// Handler is not called again, though a call already running may still be
// running. Close is idempotent; if the connection was lost before, Err keeps
// reporting that.
func (c *Conn) Close() {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		c.client.Disconnect(uint(closeQuiesce / time.Millisecond))
		if c.end(nil) {
			c.log.Debug("mqtt connection closed")
		}
	})
}
