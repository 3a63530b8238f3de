package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/logtest"
)

const testToken = "admin-token-for-tests"

// fakeSupervisor records follows in memory.
type fakeSupervisor struct {
	mu        sync.Mutex
	followed  map[access.Kind][]string
	followErr error // returned by Follow when set
	readyErr  error
	streams   []fixtures.StreamInfo // returned by Streams when set
	calls     int
}

func newFake() *fakeSupervisor {
	return &fakeSupervisor{followed: map[access.Kind][]string{}}
}

func (f *fakeSupervisor) Follow(kind access.Kind, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.followErr != nil {
		return false, f.followErr
	}
	if slices.Contains(f.followed[kind], id) {
		return false, nil
	}
	f.followed[kind] = append(f.followed[kind], id)
	return true, nil
}

func (f *fakeSupervisor) Unfollow(kind access.Kind, id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	i := slices.Index(f.followed[kind], id)
	if i < 0 {
		return false
	}
	f.followed[kind] = slices.Delete(f.followed[kind], i, i+1)
	return true
}

func (f *fakeSupervisor) Streams() []fixtures.StreamInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.streams != nil {
		return f.streams
	}
	var out []fixtures.StreamInfo
	for _, kind := range []access.Kind{access.Fixture, access.Venue} {
		for _, id := range f.followed[kind] {
			out = append(out, fixtures.StreamInfo{ID: id, Kind: kind, State: fixtures.StateConnecting})
		}
	}
	return out
}

func (f *fakeSupervisor) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readyErr
}

func (f *fakeSupervisor) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// serve sends one request to h and returns the recorded response.
func serve(t *testing.T, h http.Handler, method, target, auth string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// jsonError decodes an {"error": ...} body.
func jsonError(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", rec.Body.String(), err)
	}
	if body.Error == "" {
		t.Errorf("body %q has no error", rec.Body.String())
	}
	return body.Error
}

func TestHealthz(t *testing.T) {
	fake := newFake()
	fake.readyErr = errors.New("not yet")
	h := New(Options{Supervisor: fake, NATSReady: func() error { return errors.New("down") }})
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		t.Run(method, func(t *testing.T) {
			rec := serve(t, h, method, "/healthz", "")
			if rec.Code != http.StatusOK {
				t.Errorf("status = %d, want 200", rec.Code)
			}
			if method == http.MethodGet && rec.Body.String() != "ok" {
				t.Errorf("body = %q, want ok", rec.Body.String())
			}
		})
	}
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name       string
		natsReady  func() error
		supErr     error
		wantStatus int
		wantBody   map[string]string
	}{
		{
			name:       "ready",
			natsReady:  func() error { return nil },
			wantStatus: http.StatusOK,
			wantBody:   map[string]string{"status": "ready"},
		},
		{
			name:       "no nats check",
			wantStatus: http.StatusOK,
			wantBody:   map[string]string{"status": "ready"},
		},
		{
			name:       "nats down",
			natsReady:  func() error { return errors.New("disconnected") },
			wantStatus: http.StatusServiceUnavailable,
			wantBody:   map[string]string{"status": "not ready", "reason": "nats: disconnected"},
		},
		{
			name:       "streams not connected",
			natsReady:  func() error { return nil },
			supErr:     errors.New("fixture f1 is failed"),
			wantStatus: http.StatusServiceUnavailable,
			wantBody:   map[string]string{"status": "not ready", "reason": "streams: fixture f1 is failed"},
		},
		{
			name:       "both",
			natsReady:  func() error { return errors.New("disconnected") },
			supErr:     errors.New("fixture f1 is connecting"),
			wantStatus: http.StatusServiceUnavailable,
			wantBody:   map[string]string{"status": "not ready", "reason": "nats: disconnected; streams: fixture f1 is connecting"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake()
			fake.readyErr = tt.supErr
			rec := serve(t, New(Options{Supervisor: fake, NATSReady: tt.natsReady}), http.MethodGet, "/readyz", "")
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var got map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			if !maps.Equal(got, tt.wantBody) {
				t.Errorf("body = %v, want %v", got, tt.wantBody)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, "datacore_up 1\n")
	})
	tests := []struct {
		name       string
		metrics    http.Handler
		wantStatus int
		wantBody   string
	}{
		{"with handler", metrics, http.StatusOK, "datacore_up 1\n"},
		{"without handler", nil, http.StatusNotFound, `{"error":"metrics are not enabled"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, New(Options{Supervisor: newFake(), Metrics: tt.metrics}), http.MethodGet, "/metrics", "")
			if rec.Code != tt.wantStatus || rec.Body.String() != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestSubscriptions(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	tests := []struct {
		name    string
		streams []fixtures.StreamInfo
		want    string
	}{
		{"none", nil, "[]\n"},
		{
			name: "one of each",
			streams: []fixtures.StreamInfo{
				{ID: "f1", Kind: access.Fixture, Source: fixtures.SourceDiscovery, State: fixtures.StateConnected, ConnectedSince: &since, Messages: 7},
				{ID: "v1", Kind: access.Venue, Source: fixtures.SourceEnv, State: fixtures.StateFailed, LastError: "forbidden"},
			},
			want: `[{"id":"f1","kind":"fixture","source":"discovery","state":"connected","connectedSince":"2026-01-02T03:04:05.000000006Z","grantExpiresAt":null,"messages":7,"lastMessageAt":null},` +
				`{"id":"v1","kind":"venue","source":"env","state":"failed","connectedSince":null,"grantExpiresAt":null,"messages":0,"lastMessageAt":null,"lastError":"forbidden"}]` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake()
			fake.streams = tt.streams
			rec := serve(t, New(Options{Supervisor: fake}), http.MethodGet, "/v1/subscriptions", "")
			if rec.Code != http.StatusOK {
				t.Errorf("status = %d", rec.Code)
			}
			if rec.Body.String() != tt.want {
				t.Errorf("body = %s\nwant   %s", rec.Body.String(), tt.want)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
}

func TestAdminAuth(t *testing.T) {
	tests := []struct {
		name          string
		adminToken    string
		auth          string
		wantStatus    int
		wantChallenge string
		wantError     string
	}{
		{"admin api disabled", "", "Bearer " + testToken, http.StatusForbidden, "", "admin API disabled: no admin token is configured"},
		{"admin api disabled, no header", "", "", http.StatusForbidden, "", "admin API disabled"},
		{"missing header", testToken, "", http.StatusUnauthorized, `Bearer realm="datacore-bridge"`, "missing bearer token"},
		{"basic scheme", testToken, "Basic " + testToken, http.StatusUnauthorized, `Bearer realm="datacore-bridge"`, "missing bearer token"},
		{"bearer without token", testToken, "Bearer ", http.StatusUnauthorized, `Bearer realm="datacore-bridge"`, "missing bearer token"},
		{"token without scheme", testToken, testToken, http.StatusUnauthorized, `Bearer realm="datacore-bridge"`, "missing bearer token"},
		{"wrong token", testToken, "Bearer nope", http.StatusUnauthorized, `Bearer realm="datacore-bridge", error="invalid_token"`, "invalid bearer token"},
		{"token prefix", testToken, "Bearer " + testToken[:5], http.StatusUnauthorized, `Bearer realm="datacore-bridge", error="invalid_token"`, "invalid bearer token"},
		{"token with suffix", testToken, "Bearer " + testToken + "x", http.StatusUnauthorized, `Bearer realm="datacore-bridge", error="invalid_token"`, "invalid bearer token"},
		{"right token", testToken, "Bearer " + testToken, http.StatusCreated, "", ""},
		{"scheme is case-insensitive", testToken, "bearer " + testToken, http.StatusCreated, "", ""},
	}
	for _, tt := range tests {
		for _, target := range []string{"/v1/fixtures/f1", "/v1/venues/v1"} {
			for _, method := range []string{http.MethodPut, http.MethodDelete} {
				t.Run(tt.name+"/"+method+" "+target, func(t *testing.T) {
					fake := newFake()
					h := New(Options{Supervisor: fake, AdminToken: tt.adminToken})
					rec := serve(t, h, method, target, tt.auth)
					want := tt.wantStatus
					if want == http.StatusCreated && method == http.MethodDelete {
						want = http.StatusNoContent
					}
					if rec.Code != want {
						t.Fatalf("status = %d, want %d (body %q)", rec.Code, want, rec.Body.String())
					}
					if got := rec.Header().Get("WWW-Authenticate"); got != tt.wantChallenge {
						t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantChallenge)
					}
					if tt.wantError == "" {
						if fake.callCount() != 1 {
							t.Errorf("supervisor called %d times, want 1", fake.callCount())
						}
						return
					}
					if msg := jsonError(t, rec); !strings.Contains(msg, tt.wantError) {
						t.Errorf("error = %q, want it to contain %q", msg, tt.wantError)
					}
					if fake.callCount() != 0 {
						t.Errorf("supervisor called %d times on a refused request", fake.callCount())
					}
				})
			}
		}
	}
}

func TestMutationsAreIdempotent(t *testing.T) {
	fake := newFake()
	h := New(Options{Supervisor: fake, AdminToken: testToken})
	auth := "Bearer " + testToken
	steps := []struct {
		name       string
		method     string
		target     string
		wantStatus int
		wantBody   string
		wantSubs   string
	}{
		{"follow fixture", http.MethodPut, "/v1/fixtures/f1", http.StatusCreated, `{"id":"f1","kind":"fixture","added":true}`, "fixture/f1"},
		{"follow fixture again", http.MethodPut, "/v1/fixtures/f1", http.StatusOK, `{"id":"f1","kind":"fixture","added":false}`, "fixture/f1"},
		{"follow venue with same id", http.MethodPut, "/v1/venues/f1", http.StatusCreated, `{"id":"f1","kind":"venue","added":true}`, "fixture/f1 venue/f1"},
		{"unfollow fixture", http.MethodDelete, "/v1/fixtures/f1", http.StatusNoContent, "", "venue/f1"},
		{"unfollow fixture again", http.MethodDelete, "/v1/fixtures/f1", http.StatusNoContent, "", "venue/f1"},
		{"unfollow never followed venue", http.MethodDelete, "/v1/venues/v9", http.StatusNoContent, "", "venue/f1"},
		{"unfollow venue", http.MethodDelete, "/v1/venues/f1", http.StatusNoContent, "", ""},
		{"escaped id", http.MethodPut, "/v1/fixtures/sr:match:1%20x", http.StatusCreated, `{"id":"sr:match:1 x","kind":"fixture","added":true}`, "fixture/sr:match:1 x"},
	}
	for _, s := range steps {
		rec := serve(t, h, s.method, s.target, auth)
		if rec.Code != s.wantStatus {
			t.Fatalf("%s: status = %d, want %d (body %q)", s.name, rec.Code, s.wantStatus, rec.Body.String())
		}
		if got := strings.TrimSuffix(rec.Body.String(), "\n"); got != s.wantBody {
			t.Errorf("%s: body = %q, want %q", s.name, got, s.wantBody)
		}
		var subs []fixtures.StreamInfo
		if err := json.Unmarshal(serve(t, h, http.MethodGet, "/v1/subscriptions", "").Body.Bytes(), &subs); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range subs {
			got = append(got, string(s.Kind)+"/"+s.ID)
		}
		if strings.Join(got, " ") != s.wantSubs {
			t.Errorf("%s: subscriptions = %q, want %q", s.name, strings.Join(got, " "), s.wantSubs)
		}
	}
}

func TestFollowRefused(t *testing.T) {
	fake := newFake()
	fake.followErr = errors.New(`invalid fixture id "a/b"`)
	h := New(Options{Supervisor: fake, AdminToken: testToken})
	rec := serve(t, h, http.MethodPut, "/v1/fixtures/a%2Fb", "Bearer "+testToken)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status = %d, want 400", rec.Code)
	}
	if msg := jsonError(t, rec); msg != `invalid fixture id "a/b"` {
		t.Errorf("error = %q", msg)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	tests := []struct {
		name, method, target, allow string
	}{
		{"get a fixture", http.MethodGet, "/v1/fixtures/f1", "PUT, DELETE"},
		{"post a fixture", http.MethodPost, "/v1/fixtures/f1", "PUT, DELETE"},
		{"patch a venue", http.MethodPatch, "/v1/venues/v1", "PUT, DELETE"},
		{"post healthz", http.MethodPost, "/healthz", "GET, HEAD"},
		{"put readyz", http.MethodPut, "/readyz", "GET, HEAD"},
		{"post metrics", http.MethodPost, "/metrics", "GET, HEAD"},
		{"delete subscriptions", http.MethodDelete, "/v1/subscriptions", "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake()
			rec := serve(t, New(Options{Supervisor: fake, AdminToken: testToken}), tt.method, tt.target, "Bearer "+testToken)
			if rec.Code != http.StatusMethodNotAllowed {
				t.Fatalf("status = %d, want 405", rec.Code)
			}
			if got := rec.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			jsonError(t, rec)
			if fake.callCount() != 0 {
				t.Errorf("supervisor called")
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	for _, target := range []string{"/", "/nope", "/v1/fixtures", "/v1/fixtures/", "/v1/fixtures/a/b", "/v1/subscriptions/x"} {
		t.Run(target, func(t *testing.T) {
			rec := serve(t, New(Options{Supervisor: newFake(), AdminToken: testToken}), http.MethodPut, target, "Bearer "+testToken)
			if rec.Code != http.StatusNotFound {
				t.Fatalf("status = %d, want 404", rec.Code)
			}
			jsonError(t, rec)
		})
	}
}

func TestLogs(t *testing.T) {
	var logs logtest.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fake := newFake()
	h := New(Options{Supervisor: fake, AdminToken: testToken, Logger: logger})
	serve(t, h, http.MethodPut, "/v1/fixtures/f1", "Bearer "+testToken)
	serve(t, h, http.MethodDelete, "/v1/venues/v1", "Bearer "+testToken)
	serve(t, h, http.MethodPut, "/v1/fixtures/f2", "Bearer wrong-"+testToken)

	type line struct {
		Level, Msg, Kind, ID, Reason string
	}
	var got []line
	for l := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var rec struct {
			Level  string `json:"level"`
			Msg    string `json:"msg"`
			Kind   string `json:"kind"`
			ID     string `json:"id"`
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		got = append(got, line{rec.Level, rec.Msg, rec.Kind, rec.ID, rec.Reason})
	}
	want := []line{
		{"INFO", "follow", "fixture", "f1", ""},
		{"INFO", "unfollow", "venue", "v1", ""},
		{"WARN", "admin request refused", "", "", "invalid bearer token"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("logs = %+v\nwant %+v", got, want)
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("logs contain the admin token: %s", logs.String())
	}
}

func TestOverRealServer(t *testing.T) {
	fake := newFake()
	srv := httptest.NewServer(New(Options{Supervisor: fake, AdminToken: testToken}))
	t.Cleanup(srv.Close)

	req, err := http.NewRequest(http.MethodPut, srv.URL+"/v1/venues/v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("PUT status = %d, want 201", resp.StatusCode)
	}
	resp, err = srv.Client().Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Errorf("healthz = %d %q", resp.StatusCode, body)
	}
}

func TestNewWithoutSupervisorPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New did not panic")
		}
	}()
	New(Options{})
}

func TestNewServer(t *testing.T) {
	h := http.NotFoundHandler()
	srv := NewServer("127.0.0.1:0", h, nil)
	if srv.Addr != "127.0.0.1:0" || srv.Handler == nil || srv.ReadHeaderTimeout <= 0 || srv.ErrorLog == nil {
		t.Errorf("server = %+v", srv)
	}
}
