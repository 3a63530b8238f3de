package main

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datacore-bridge/datacore-bridge/sim"
)

// seeWriter keeps what is written and closes seen once it holds want.
type seeWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *seeWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

func (w *seeWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestRunDemoFollowsAnOrganization(t *testing.T) {
	out := &seeWriter{want: "unfollowed sim:org:demo-org:game:", seen: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, demoOptions{
			fixtures: 1, venues: 0, grantTTL: 20 * time.Second, rate: 5, every: time.Second,
			natsPort: -1, httpAddr: "127.0.0.1:0",
			organizations: []string{"demo-org"},
			schedule:      sim.Schedule{Every: 3 * time.Second, Lead: time.Second, Length: 2 * time.Second, FinalAfter: time.Second},
			interval:      time.Second, ahead: 3 * time.Second, stopAfter: 500 * time.Millisecond,
		}, out, slog.New(slog.DiscardHandler))
	}()
	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("runDemo returned %v before a game was unfollowed; output:\n%s", err, out)
	case <-time.After(60 * time.Second):
		cancel()
		<-done
		t.Fatalf("no game unfollowed within 60s; output:\n%s", out)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runDemo: %v", err)
	}
	got := out.String()
	for _, want := range []string{
		"organizations        demo-org: a game every 3s",
		"discovered and followed sim:org:demo-org:game:",
		"sim:org:demo-org:game:",
		" is CONFIRMED\n",
		"(last status CONFIRMED)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	// The final summary counts the discovered and unfollowed games and the REST calls.
	m := regexp.MustCompile(`discovered (\d+), unfollowed (\d+); REST listing calls (\d+), REST token calls (\d+)`).FindAllStringSubmatch(got, -1)
	if len(m) == 0 {
		t.Fatalf("no discovery summary in the output:\n%s", got)
	}
	last := m[len(m)-1]
	n := make([]int, 4)
	for i := range n {
		n[i], _ = strconv.Atoi(last[i+1])
	}
	if n[0] < 1 || n[1] < 1 || n[1] > n[0] || n[2] < 1 || n[3] != 1 {
		t.Errorf("summary %q: want at least one game discovered and unfollowed, listings made, one token call", last[0])
	}
}
