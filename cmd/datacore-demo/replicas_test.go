package main

import (
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/datacore-bridge/datacore-bridge/internal/logtest"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// TestRunDemoReplicasTakeOver runs the demo with three replicas: it spreads
// the fixtures, kills the replica owning the most without a handover, and
// prints the takeover; at the end every followed ID is owned by a live
// replica and messages kept flowing.
func TestRunDemoReplicasTakeOver(t *testing.T) {
	out := &seeWriter{want: "takeover done", seen: make(chan struct{})}
	logs := &logtest.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, demoOptions{
			fixtures: 4, venues: 1, grantTTL: 20 * time.Second, rate: 5, every: 500 * time.Millisecond,
			natsPort: -1, httpAddr: "127.0.0.1:0",
			organizations: []string{"demo-org"},
			// Two games followed from the start (one running, one about
			// to start), none finished or discovered during the test.
			schedule: sim.Schedule{Every: time.Minute, Lead: 2 * time.Second, Length: 5 * time.Minute, FinalAfter: time.Second, Past: 1},
			interval: time.Second, ahead: 5 * time.Second, stopAfter: time.Second,
			replicas: 3, killAfter: 4 * time.Second, leaseTTL: time.Second,
		}, out, log)
	}()
	stop := func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("runDemo: %v\noutput:\n%s", err, out)
		}
	}
	// The spread after the takeover, then two more summaries, and the
	// survivors' failover count.
	respread := regexp.MustCompile(`(?s)spread again over the live replicas: .*\n\[.*\] \d+ messages in NATS.*\n\[.*\] \d+ messages in NATS`)
	if err := poll.Until(t.Context(), 20*time.Second, "the spread after the takeover", func() bool {
		select {
		case err := <-done:
			t.Fatalf("runDemo returned %v early; output:\n%s", err, out)
		default:
		}
		got := out.String()
		return respread.MatchString(got) && strings.Contains(got, "datacore_cluster_failover_seconds on the survivors:")
	}); err != nil {
		cancel()
		<-done
		t.Fatalf("%v; output:\n%s", err, out)
	}
	stop()
	got := out.String()

	for _, want := range []string{
		`cluster "demo"       3 replicas in this process`,
		"replica-1 HTTP       http://127.0.0.1:",
		"replica-3 HTTP       http://127.0.0.1:",
		"spread over the replicas: replica-1: ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}

	// The kill names the victim and its streams; each is taken over by a
	// live replica, and the takeover's summary lists them all.
	kill := regexp.MustCompile(`killed (replica-\d) as a crash would; it owned (.*)\n`).FindStringSubmatch(got)
	if kill == nil {
		t.Fatalf("no kill line:\n%s", got)
	}
	victim, owned := kill[1], strings.Split(kill[2], ", ")
	if owned[0] == "nothing" {
		t.Fatalf("the victim owned nothing: with 7 IDs over 3 replicas the busiest owns 3:\n%s", got)
	}
	done1 := regexp.MustCompile(`takeover done in [0-9.]+m?s: (replica-\d)'s (\d+) streams moved \((.*)\)\n`).FindStringSubmatch(got)
	if done1 == nil {
		t.Fatalf("no takeover line:\n%s", got)
	}
	if done1[1] != victim || done1[2] != strconv.Itoa(len(owned)) {
		t.Errorf("takeover line %q: want %s's %d streams", done1[0], victim, len(owned))
	}
	for _, id := range owned {
		m := regexp.MustCompile(regexp.QuoteMeta(id) + ` taken over by (replica-\d): connected [0-9.]+m?s after the kill`).FindStringSubmatch(got)
		switch {
		case m == nil:
			t.Errorf("no takeover of %s:\n%s", id, got)
		case m[1] == victim:
			t.Errorf("%s taken over by the killed %s", id, victim)
		}
		if !strings.Contains(done1[3], id+" → replica-") {
			t.Errorf("takeover line %q lacks %s", done1[0], id)
		}
	}
	// The survivors' failover histogram: at most one count per stream taken
	// over (the count itself is cluster's to test: its lease renewal can
	// write "connected" before the takeover is counted).
	fo := regexp.MustCompile(`\] datacore_cluster_failover_seconds on the survivors: (?:none counted|(\d+) streams, mean [0-9.]+s \(.*lease TTL 1s\))\n`).FindStringSubmatch(got)
	if fo == nil {
		t.Errorf("output lacks the survivors' failover line:\n%s", got)
	} else if n, _ := strconv.Atoi(fo[1]); n > len(owned) {
		t.Errorf("%q: more failovers than the %d streams taken over", fo[0], len(owned))
	}

	// No handover: the survivors took the streams from a member whose keys
	// expired (a Shutdown that drains makes none of these lines).
	vanished := regexp.MustCompile(`"msg":"taking over a stream from a member that vanished"[^\n]*"from":"`+victim+`"`).FindAllString(logs.String(), -1)
	if len(vanished) != len(owned) {
		t.Errorf("%d streams taken over from the vanished %s in the logs, want %d:\n%s", len(vanished), victim, len(owned), logs)
	}

	// Every followed ID ends owned by a live replica, each by one.
	end := regexp.MustCompile(`owners at the end: (.*)\n`).FindStringSubmatch(got)
	if end == nil {
		t.Fatalf("no owners at the end:\n%s", got)
	}
	seen := map[string]string{}
	for _, part := range strings.Split(end[1], " | ") {
		name, ids, ok := strings.Cut(part, ": ")
		switch {
		case !ok:
			t.Fatalf("owners at the end %q: bad part %q", end[1], part)
		case name == victim:
			t.Errorf("owners at the end %q list the killed %s", end[1], victim)
		case !strings.HasPrefix(name, "replica-"):
			t.Errorf("owners at the end %q: %s", end[1], part)
		}
		for _, id := range strings.Split(ids, ", ") {
			if prev, dup := seen[id]; dup {
				t.Errorf("%s owned by %s and %s", id, prev, name)
			}
			seen[id] = name
		}
	}
	for _, id := range []string{"sr:match:60000001", "sr:match:60000002", "sr:match:60000003", "sr:match:60000004", "venue-1",
		"sim:org:demo-org:game:-1", "sim:org:demo-org:game:0"} {
		if seen[id] == "" {
			t.Errorf("%s not owned at the end: %q", id, end[1])
		}
	}

	// Messages kept flowing after the takeover.
	tail := got[strings.Index(got, "takeover done"):]
	counts := regexp.MustCompile(`\] (\d+) messages in NATS`).FindAllStringSubmatch(tail, -1)
	if len(counts) < 2 {
		t.Fatalf("fewer than two summaries after the takeover:\n%s", tail)
	}
	first, _ := strconv.Atoi(counts[0][1])
	last, _ := strconv.Atoi(counts[len(counts)-1][1])
	if last <= first {
		t.Errorf("messages in NATS %d then %d after the takeover: want more", first, last)
	}
}
