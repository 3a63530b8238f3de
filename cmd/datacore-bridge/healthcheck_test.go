package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
)

// healthTarget is a stand-in for the bridge's HTTP API: it answers every request with
// status and remembers the paths asked for.
type healthTarget struct {
	srv    *httptest.Server
	mu     sync.Mutex
	paths  []string
	status int
}

func newHealthTarget(t *testing.T, status int) *healthTarget {
	t.Helper()
	p := &healthTarget{status: status}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.paths = append(p.paths, r.URL.Path)
		p.mu.Unlock()
		w.WriteHeader(p.status)
		_, _ = w.Write([]byte(`{"status":"not ready","reason":"nats: not connected"}`))
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// port is the port the stand-in listens on.
func (p *healthTarget) port(t *testing.T) string {
	t.Helper()
	_, port, err := net.SplitHostPort(p.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func (p *healthTarget) requested() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.paths...)
}

// unreachableHealthURL is a URL on a port where nothing listens.
func unreachableHealthURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/healthz"
}

func TestHealthcheckCommand(t *testing.T) {
	ok := newHealthTarget(t, http.StatusOK)
	unready := newHealthTarget(t, http.StatusServiceUnavailable)
	down := unreachableHealthURL(t)

	tests := []struct {
		name       string
		env        *string // DATACORE_HTTP_ADDR; nil: unset
		args       []string
		server     *healthTarget // the one expected to be asked, if any
		wantPath   string
		wantCode   int
		wantStderr string
	}{
		{
			name:     "url answers 200",
			args:     []string{"-url", ok.srv.URL + "/healthz"},
			server:   ok,
			wantPath: "/healthz",
			wantCode: 0,
		},
		{
			name:       "url answers 503",
			args:       []string{"-url", unready.srv.URL + "/readyz"},
			server:     unready,
			wantPath:   "/readyz",
			wantCode:   1,
			wantStderr: "503",
		},
		{
			name:       "url unreachable",
			args:       []string{"-url", down},
			wantCode:   1,
			wantStderr: "healthcheck:",
		},
		{
			name:     "addr with host",
			env:      addrOf("127.0.0.1:" + ok.port(t)),
			server:   ok,
			wantPath: "/healthz",
			wantCode: 0,
		},
		{
			name:     "addr with port only means localhost",
			env:      addrOf(":" + ok.port(t)),
			server:   ok,
			wantPath: "/healthz",
			wantCode: 0,
		},
		{
			name:     "addr on every interface means localhost",
			env:      addrOf("0.0.0.0:" + ok.port(t)),
			server:   ok,
			wantPath: "/healthz",
			wantCode: 0,
		},
		{
			name:     "path flag",
			env:      addrOf(":" + ok.port(t)),
			args:     []string{"-path", "/readyz"},
			server:   ok,
			wantPath: "/readyz",
			wantCode: 0,
		},
		{
			name:       "addr answers 503",
			env:        addrOf(":" + unready.port(t)),
			server:     unready,
			wantPath:   "/healthz",
			wantCode:   1,
			wantStderr: "not connected",
		},
		{
			name:       "url wins over addr",
			env:        addrOf(":" + unready.port(t)),
			args:       []string{"-url", ok.srv.URL + "/healthz"},
			server:     ok,
			wantPath:   "/healthz",
			wantCode:   0,
			wantStderr: "",
		},
		{
			name:       "empty addr means no HTTP",
			env:        addrOf(""),
			wantCode:   2,
			wantStderr: "DATACORE_HTTP_ADDR is empty",
		},
		{
			name:       "addr without port",
			env:        addrOf("localhost"),
			wantCode:   2,
			wantStderr: "DATACORE_HTTP_ADDR",
		},
		{
			name:       "unknown flag",
			args:       []string{"-bogus"},
			wantCode:   2,
			wantStderr: "bogus",
		},
		{
			name:       "bad url",
			args:       []string{"-url", "http://[::1"},
			wantCode:   2,
			wantStderr: "healthcheck:",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setHealthcheckAddr(t, tt.env)
			var before int
			if tt.server != nil {
				before = len(tt.server.requested())
			}
			var stderr strings.Builder
			code := healthcheckCommand(context.Background(), tt.args, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Fatalf("stderr %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
			if tt.wantCode == 0 && stderr.Len() != 0 {
				t.Fatalf("stderr %q on success, want nothing", stderr.String())
			}
			if tt.server != nil {
				got := tt.server.requested()[before:]
				if len(got) != 1 || got[0] != tt.wantPath {
					t.Fatalf("requests %v, want one to %s", got, tt.wantPath)
				}
			}
		})
	}
}

// TestHealthcheckDefaultAddr checks that with DATACORE_HTTP_ADDR unset the
// check asks port 8080 on the local host.
func TestHealthcheckDefaultAddr(t *testing.T) {
	setHealthcheckAddr(t, nil)
	var stderr strings.Builder
	code := healthcheckCommand(context.Background(), []string{"-timeout", "2s"}, &stderr)
	if code == 0 {
		t.Skip("something on 127.0.0.1:8080 answered 200; cannot tell where the check went")
	}
	if !strings.Contains(stderr.String(), "127.0.0.1:8080/healthz") {
		t.Fatalf("exit %d, stderr %q: want the check to target 127.0.0.1:8080/healthz", code, stderr.String())
	}
}

// TestHealthcheckTimeout checks that a bridge that does not answer in time fails
// the check instead of hanging it.
func TestHealthcheckTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close

	var stderr strings.Builder
	code := healthcheckCommand(context.Background(), []string{"-url", srv.URL + "/healthz", "-timeout", "100ms"}, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "deadline exceeded") {
		t.Fatalf("stderr %q, want it to say the deadline was exceeded", stderr.String())
	}
}

// setHealthcheckAddr sets DATACORE_HTTP_ADDR to *v, or unsets it when v is nil, for
// the rest of the test.
func setHealthcheckAddr(t *testing.T, v *string) {
	t.Helper()
	const name = "DATACORE_HTTP_ADDR"
	t.Setenv(name, "") // restores the original value after the test
	if v == nil {
		if err := os.Unsetenv(name); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Setenv(name, *v)
}

// addrOf returns a pointer to a copy of s, for the optional env field.
func addrOf(s string) *string { return &s }
