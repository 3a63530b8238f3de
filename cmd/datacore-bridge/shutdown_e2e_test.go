package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/datacore-bridge/datacore-bridge/internal/logtest"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// stuckBridge is the bridge run as a child process in JetStream mode, with
// NATS stopped under it while the feed runs, so that it holds messages
// JetStream cannot acknowledge.
type stuckBridge struct {
	cmd  *exec.Cmd
	logs *logtest.Buffer
	done chan error
}

// startStuckBridge starts the child, waits until it publishes, stops NATS and
// waits until the bridge holds unsettled messages.
func startStuckBridge(t *testing.T, shutdownTimeout time.Duration) *stuckBridge {
	t.Helper()
	emu, err := sim.Start(context.Background(), sim.Options{
		CredentialID: testCredID, CredentialSecret: testCredSecret,
		Fixtures: []string{"sr:match:90"}, Feed: sim.Feed{Rate: 200},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	e := &env{t: t, nsOp: &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()}}
	e.startNATS()
	t.Cleanup(e.ns.Shutdown)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))

	cmd := daemonCommand(emu.APIURL(), e.ns.ClientURL(),
		"DATACORE_FIXTURES=sr:match:90",
		"DATACORE_JETSTREAM=true",
		"DATACORE_STREAM=DATACORE",
		"DATACORE_HTTP_ADDR="+httpAddr,
		"DATACORE_LOG_LEVEL=info",
		"DATACORE_SHUTDOWN_TIMEOUT="+shutdownTimeout.String(),
	)
	sb := &stuckBridge{cmd: cmd, logs: &logtest.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = sb.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { sb.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-sb.done
	})
	metric := func(name string) float64 {
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(body)
		if m == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	poll.Wait(t, 20*time.Second, "messages published to JetStream", func() bool {
		return sb.logs.Count("stream ready") == 1 && metric(`datacore_messages_published_total\{[^}]*\}`) > 0
	})
	e.ns.Shutdown()
	poll.Wait(t, 10*time.Second, "messages held while NATS is away", func() bool {
		return metric("datacore_inflight_messages") > 0
	})
	return sb
}

// signal sends sig to the child.
func (sb *stuckBridge) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := sb.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// wait waits at most limit for the child to exit and returns its status.
func (sb *stuckBridge) wait(t *testing.T, limit time.Duration, what string) int {
	t.Helper()
	select {
	case err := <-sb.done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("wait: %v", err)
		}
		sb.done <- err // for the cleanup
		return sb.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		t.Fatalf("still running %v after %s; logs:\n%s", limit, what, sb.logs.String())
		return -1
	}
}

// abandonedCount is the number of messages the log says were abandoned.
func abandonedCount(logs string) int {
	m := regexp.MustCompile(`shutdown abandoned unacknowledged publishes.*?abandoned unacknowledged: (\d+) messages`).FindStringSubmatch(logs)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestShutdownAbandoningMessagesExits1 stops NATS under a JetStream bridge that
// is receiving messages, then sends SIGTERM: the messages cannot be
// acknowledged, so the shutdown abandons them at its deadline, says how many,
// and the process exits 1 (not 0, which would tell the orchestrator all was well).
func TestShutdownAbandoningMessagesExits1(t *testing.T) {
	sb := startStuckBridge(t, 2*time.Second)
	sb.signal(t, syscall.SIGTERM)
	if code := sb.wait(t, 15*time.Second, "SIGTERM with a 2s shutdown timeout"); code != 1 {
		t.Fatalf("exit %d, want 1; logs:\n%s", code, sb.logs.String())
	}
	logs := sb.logs.String()
	if n := abandonedCount(logs); n < 1 {
		t.Errorf("the log does not say how many messages were abandoned; logs:\n%s", logs)
	}
	if sb.logs.Count("shutdown incomplete") != 1 || sb.logs.Count("stopped") != 0 {
		t.Errorf("want one 'shutdown incomplete' and no 'stopped'; logs:\n%s", logs)
	}
}

// TestSecondSignalCutsShutdownShort sends SIGTERM to a bridge that cannot
// settle its messages and has a 60 s shutdown timeout, then a second SIGTERM:
// the bridge abandons them at once, logs it, and exits 1 long before the
// timeout (the bound below is a bound, not a speed measurement).
func TestSecondSignalCutsShutdownShort(t *testing.T) {
	sb := startStuckBridge(t, 60*time.Second)
	sb.signal(t, syscall.SIGTERM)
	poll.Wait(t, 10*time.Second, "the shutdown to start", func() bool { return sb.logs.Count("shutting down") == 1 })
	select {
	case err := <-sb.done:
		t.Fatalf("exited before the second signal (%v); logs:\n%s", err, sb.logs.String())
	default:
	}
	sb.signal(t, syscall.SIGTERM)
	if code := sb.wait(t, 15*time.Second, "the second SIGTERM (shutdown timeout 60s)"); code != 1 {
		t.Fatalf("exit %d, want 1 (messages were abandoned); logs:\n%s", code, sb.logs.String())
	}
	logs := sb.logs.String()
	if sb.logs.Count("second signal: stopping now, abandoning what is not settled") != 1 {
		t.Errorf("the second signal is not logged; logs:\n%s", logs)
	}
	if n := abandonedCount(logs); n < 1 {
		t.Errorf("the log does not say how many messages were abandoned; logs:\n%s", logs)
	}
	if strings.Contains(logs, testCredSecret) {
		t.Error("the secret reached the logs")
	}
}
