package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestConfigErrorsFoundAtLoad runs the command with configurations that used to
// be refused only once the bridge was running (or that hung or ate memory): each
// exits 2 promptly with a first line naming the variable, and nothing connects
// to the access API or NATS.
func TestConfigErrorsFoundAtLoad(t *testing.T) {
	var apiHits atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		apiHits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(api.Close)
	natsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { natsLn.Close() })
	var natsHits atomic.Int64
	go func() {
		for {
			c, err := natsLn.Accept()
			if err != nil {
				return
			}
			natsHits.Add(1)
			c.Close()
		}
	}()

	fifo := filepath.Join(t.TempDir(), "secret-fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{
		"DATACORE_CREDENTIAL_ID":     "x",
		"DATACORE_CREDENTIAL_SECRET": "y",
		"DATACORE_FIXTURES":          "f",
		"DATACORE_API_URL":           api.URL,
		"DATACORE_NATS_URL":          "nats://" + natsLn.Addr().String(),
		"DATACORE_HTTP_ADDR":         "",
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
		wantMsg string
	}{
		{name: "id over 256 bytes", env: map[string]string{"DATACORE_FIXTURES": strings.Repeat("f", 257)},
			wantVar: "DATACORE_FIXTURES", wantMsg: "257 bytes, longer than 256"},
		{name: "venue id with a space", env: map[string]string{"DATACORE_VENUES": "v 1"},
			wantVar: "DATACORE_VENUES", wantMsg: `contains ' '`},
		{name: "api url with user info", env: map[string]string{"DATACORE_API_URL": strings.Replace(api.URL, "://", "://u:pw@", 1)},
			wantVar: "DATACORE_API_URL", wantMsg: "must not contain user information"},
		{name: "oauth token url with user info", env: map[string]string{
			"DATACORE_OAUTH_TOKEN_URL": strings.Replace(api.URL, "://", "://cid:csec@", 1) + "/token",
			"DATACORE_OAUTH_CLIENT_ID": "cid", "DATACORE_OAUTH_CLIENT_SECRET": "csec",
		}, wantVar: "DATACORE_OAUTH_TOKEN_URL", wantMsg: "must not contain user information"},
		{name: "secret file is dev zero", env: map[string]string{"DATACORE_CREDENTIAL_SECRET": "", "DATACORE_CREDENTIAL_SECRET_FILE": "/dev/zero"},
			wantVar: "DATACORE_CREDENTIAL_SECRET_FILE", wantMsg: "not a regular file (a character device)"},
		{name: "secret file is a fifo", env: map[string]string{"DATACORE_CREDENTIAL_SECRET": "", "DATACORE_CREDENTIAL_SECRET_FILE": fifo},
			wantVar: "DATACORE_CREDENTIAL_SECRET_FILE", wantMsg: "not a regular file (a named pipe)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearDatacoreEnv(t)
			for k, v := range base {
				t.Setenv(k, v)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			done := make(chan int, 1)
			go func() { done <- run(nil, &stdout, &stderr) }()
			var code int
			select {
			case code = <-done:
			case <-time.After(15 * time.Second):
				// The goroutine is left behind: the old code blocks
				// reading a FIFO for ever.
				t.Fatal("still running 15 s later; want exit 2 at once")
			}
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr.String())
			}
			first, _, _ := strings.Cut(stderr.String(), "\n")
			if !strings.HasPrefix(first, tt.wantVar+": ") || !strings.Contains(first, tt.wantMsg) {
				t.Errorf("first line %q, want %s: …%s…", first, tt.wantVar, tt.wantMsg)
			}
			if strings.Contains(stderr.String(), "pw@") || strings.Contains(stderr.String(), "csec@") {
				t.Errorf("stderr shows the URL's user information: %s", stderr.String())
			}
			if n := apiHits.Load() + natsHits.Load(); n != 0 {
				t.Errorf("%d connections to the access API or NATS before the config error", n)
			}
		})
	}
}
