package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/cluster"
	"github.com/datacore-bridge/datacore-bridge/discovery"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/loglimit"
)

// Supervisor is what the HTTP API needs from the component that keeps one live
// stream per followed fixture or venue. Its methods are called concurrently from
// request goroutines and must not block for long.
type Supervisor interface {
	// Follow starts following the stream of the given kind and ID. It reports
	// whether the stream was added (false: it was already followed) and returns
	// an error, without adding anything, when the ID cannot be followed:
	// wrapping fixtures.ErrTooManyStreams at the cap (answered 409),
	// fixtures.ErrStopped once stopped (503), any other for a bad ID (400).
	Follow(kind access.Kind, id string) (added bool, err error)
	// Unfollow stops following the stream and reports whether it was followed.
	Unfollow(kind access.Kind, id string) (removed bool)
	// Streams returns a snapshot of every followed stream.
	Streams() []fixtures.StreamInfo
	// Ready returns nil when every stream is connected or briefly
	// reconnecting, else why not.
	Ready() error
}

// Discovery is what the HTTP API needs from organization discovery
// (*discovery.Poller is one). Its methods must not block for long.
type Discovery interface {
	// Status is a snapshot for GET /v1/discovery.
	Status() discovery.Status
	// Ready returns nil unless discovery has failed permanently (rejected
	// credentials, forbidden organization), else why.
	Ready() error
}

// Cluster is what the HTTP API needs in cluster mode (*cluster.Node is one):
// the followed set is shared, so admin calls change it rather than this
// process's streams. Its methods must not block for long.
type Cluster interface {
	// Follow adds an ID to the cluster's followed set, with the errors of
	// Supervisor.Follow, and wrapping cluster.ErrUnavailable (503) when the
	// set cannot be reached.
	Follow(kind access.Kind, id string) (added bool, err error)
	// Unfollow removes an ID from the followed set; its error wraps
	// cluster.ErrUnavailable.
	Unfollow(kind access.Kind, id string) (removed bool, err error)
	// Status is a snapshot for GET /v1/cluster.
	Status() cluster.Status
	// Ready returns nil while this process is a member, else why not.
	Ready() error
}

// Options configures the handler returned by New.
type Options struct {
	// Supervisor owns the followed streams. Required.
	Supervisor Supervisor
	// NATSReady returns nil while NATS is connected, else why not. Nil: NATS is
	// not part of readiness.
	NATSReady func() error
	// AdminToken is the bearer token the mutations need. Empty: the admin API
	// is disabled and mutations answer 403.
	AdminToken string
	// Metrics serves GET /metrics. Nil: /metrics answers 404.
	Metrics http.Handler
	// Discovery reports on organization discovery. Nil: GET /v1/discovery
	// answers 404 and discovery is not part of readiness.
	Discovery Discovery
	// Cluster, in cluster mode, takes the admin mutations, serves
	// GET /v1/cluster and is part of readiness. Nil: GET /v1/cluster answers
	// 404 and mutations go to the Supervisor.
	Cluster Cluster
	// Logger receives one line per mutation and per refused admin request. Nil
	// discards.
	Logger *slog.Logger
}

// handler serves the endpoints.
type handler struct {
	sup       Supervisor
	cluster   Cluster
	natsReady func() error
	discovery Discovery
	metrics   http.Handler
	logger    *slog.Logger
	// tokenHash is the SHA-256 of the admin token; comparing fixed-length
	// hashes in constant time reveals neither the token nor its length.
	tokenHash [sha256.Size]byte
	adminOn   bool
	// warns lets through one warning per kind a minute, with the count of
	// those held back: a flood of bad requests cannot flood the logs.
	warns *loglimit.Limiter
}

// maxLogged is the most bytes of a string from a request (path, method,
// user agent, ID) that are logged.
const maxLogged = 256

// New returns the handler for every endpoint (see the package documentation).
// It panics if opts.Supervisor is nil.
func New(opts Options) http.Handler {
	if opts.Supervisor == nil {
		panic("httpapi: New needs a Supervisor")
	}
	h := &handler{
		sup:       opts.Supervisor,
		cluster:   opts.Cluster,
		natsReady: opts.NATSReady,
		discovery: opts.Discovery,
		metrics:   opts.Metrics,
		logger:    opts.Logger,
		adminOn:   opts.AdminToken != "",
		warns:     loglimit.New(loglimit.DefaultEvery),
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.adminOn {
		h.tokenHash = sha256.Sum256([]byte(opts.AdminToken))
	}
	if h.metrics == nil {
		h.metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusNotFound, "metrics are not enabled")
		})
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.Handle("GET /metrics", h.metrics)
	mux.HandleFunc("GET /v1/subscriptions", h.subscriptions)
	mux.HandleFunc("GET /v1/discovery", h.discoveryStatus)
	mux.HandleFunc("GET /v1/cluster", h.clusterStatus)
	for _, r := range []struct {
		kind access.Kind
		path string
	}{
		{access.Fixture, "/v1/fixtures/{id}"},
		{access.Venue, "/v1/venues/{id}"},
	} {
		mux.Handle("PUT "+r.path, h.admin(h.follow(r.kind)))
		mux.Handle("DELETE "+r.path, h.admin(h.unfollow(r.kind)))
		mux.Handle(r.path, methodNotAllowed("PUT, DELETE"))
	}
	// A pattern with a method wins over the same path without one, so these
	// answer only the other methods, in JSON like every other error.
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/v1/subscriptions", "/v1/discovery", "/v1/cluster"} {
		mux.Handle(path, methodNotAllowed("GET, HEAD"))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not found")
	})
	return mux
}

// NewServer returns an http.Server for handler on addr with timeouts suited to
// these small requests, logging its own errors to logger (nil discards).
func NewServer(addr string, handler http.Handler, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

func (h *handler) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok"))
}

// readiness is the body of /readyz.
type readiness struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

func (h *handler) readyz(w http.ResponseWriter, _ *http.Request) {
	var reasons []string
	if h.natsReady != nil {
		if err := h.natsReady(); err != nil {
			reasons = append(reasons, "nats: "+err.Error())
		}
	}
	if err := h.sup.Ready(); err != nil {
		reasons = append(reasons, "streams: "+err.Error())
	}
	if h.discovery != nil {
		if err := h.discovery.Ready(); err != nil {
			reasons = append(reasons, err.Error())
		}
	}
	if h.cluster != nil {
		if err := h.cluster.Ready(); err != nil {
			reasons = append(reasons, err.Error())
		}
	}
	if len(reasons) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, readiness{Status: "not ready", Reason: strings.Join(reasons, "; ")})
		return
	}
	writeJSON(w, http.StatusOK, readiness{Status: "ready"})
}

func (h *handler) subscriptions(w http.ResponseWriter, _ *http.Request) {
	streams := h.sup.Streams()
	if streams == nil {
		streams = []fixtures.StreamInfo{} // [] rather than null
	}
	writeJSON(w, http.StatusOK, streams)
}

// discoveryStatus serves GET /v1/discovery: the organizations followed, the
// last successful listing, the next poll, the last error and how many
// fixtures discovery has followed.
func (h *handler) discoveryStatus(w http.ResponseWriter, _ *http.Request) {
	if h.discovery == nil {
		writeError(w, http.StatusNotFound, "discovery is not enabled: no organization is followed")
		return
	}
	writeJSON(w, http.StatusOK, h.discovery.Status())
}

// clusterStatus serves GET /v1/cluster: the members and, per followed ID,
// its assigned owners and the leases held on it.
func (h *handler) clusterStatus(w http.ResponseWriter, _ *http.Request) {
	if h.cluster == nil {
		writeError(w, http.StatusNotFound, "cluster mode is off")
		return
	}
	writeJSON(w, http.StatusOK, h.cluster.Status())
}

// followed is the body of a successful PUT.
type followed struct {
	ID    string      `json:"id"`
	Kind  access.Kind `json:"kind"`
	Added bool        `json:"added"`
}

func (h *handler) follow(kind access.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		follow := h.sup.Follow
		if h.cluster != nil {
			follow = h.cluster.Follow
		}
		added, err := follow(kind, id)
		if err != nil {
			status := followStatus(err)
			if ok, suppressed := h.warns.Allow("follow refused " + strconv.Itoa(status)); ok {
				h.logger.Warn("follow refused", "kind", kind, "id", loglimit.Truncate(id, maxLogged),
					"status", status, "error", loglimit.Truncate(err.Error(), 2*maxLogged), "suppressed", suppressed)
			}
			writeError(w, status, err.Error())
			return
		}
		h.logger.Info("follow", "kind", kind, "id", id, "added", added) // a valid ID: short
		status := http.StatusOK
		if added {
			status = http.StatusCreated
		}
		writeJSON(w, status, followed{ID: id, Kind: kind, Added: added})
	}
}

// followStatus is the HTTP status for an error from Supervisor.Follow: 409
// when the stream cap is reached (unfollowing one makes room), 503 once the
// supervisor has stopped, else 400 (the ID or kind is not valid).
func followStatus(err error) int {
	switch {
	case errors.Is(err, fixtures.ErrTooManyStreams):
		return http.StatusConflict
	case errors.Is(err, fixtures.ErrStopped), errors.Is(err, cluster.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

func (h *handler) unfollow(kind access.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		var removed bool
		if h.cluster != nil {
			var err error
			if removed, err = h.cluster.Unfollow(kind, id); err != nil {
				if ok, suppressed := h.warns.Allow("unfollow failed"); ok {
					h.logger.Warn("unfollow failed", "kind", kind, "id", loglimit.Truncate(id, maxLogged),
						"error", loglimit.Truncate(err.Error(), 2*maxLogged), "suppressed", suppressed)
				}
				writeError(w, http.StatusServiceUnavailable, err.Error())
				return
			}
		} else {
			removed = h.sup.Unfollow(kind, id)
		}
		h.logger.Info("unfollow", "kind", kind, "id", loglimit.Truncate(id, maxLogged), "removed", removed)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	}
}

// errNoBearer and errBadToken say why an admin request was refused.
var (
	errNoBearer = errors.New("missing bearer token")
	errBadToken = errors.New("invalid bearer token")
)

// admin lets a request through to next only with the admin bearer token.
func (h *handler) admin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.adminOn {
			h.refused(r, "admin API disabled")
			writeError(w, http.StatusForbidden, "admin API disabled: no admin token is configured")
			return
		}
		if err := h.checkToken(r.Header.Get("Authorization")); err != nil {
			h.refused(r, err.Error())
			challenge := `Bearer realm="datacore-bridge"`
			if errors.Is(err, errBadToken) {
				challenge += `, error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
			writeError(w, http.StatusUnauthorized, err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkToken checks an Authorization header value against the admin token.
func (h *handler) checkToken(header string) error {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return errNoBearer
	}
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(got[:], h.tokenHash[:]) != 1 {
		return errBadToken
	}
	return nil
}

// refused logs a refused admin request, without its credentials: the first
// of each reason, then one a minute with the count held back; what comes
// from the request is truncated.
func (h *handler) refused(r *http.Request, reason string) {
	ok, suppressed := h.warns.Allow("admin request refused: " + reason)
	if !ok {
		return
	}
	h.logger.Warn("admin request refused",
		"method", loglimit.Truncate(r.Method, maxLogged),
		"path", loglimit.Truncate(r.URL.Path, maxLogged),
		"user_agent", loglimit.Truncate(r.UserAgent(), maxLogged),
		"remote", loglimit.Truncate(r.RemoteAddr, maxLogged),
		"reason", reason,
		"suppressed", suppressed)
}

// methodNotAllowed answers 405 with the allowed methods.
func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; allowed: "+allow)
	})
}

// errorBody is the body of every error response.
type errorBody struct {
	Error string `json:"error"`
}

// writeError writes {"error": msg} with status.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"cannot encode the response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
