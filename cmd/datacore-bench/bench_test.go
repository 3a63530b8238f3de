package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be a cluster benchmark's bridge process, as
// the bench binary is (see childRoleEnv).
func TestMain(m *testing.M) {
	if os.Getenv(childRoleEnv) == "bridge" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

// TestBenchQuick runs `bench -quick -json` end to end and checks that every
// section is there with sane numbers. It asserts no speed.
func TestBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the emulator, NATS and the bridge for several seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := benchCommand(ctx, []string{"-quick", "-json", "-only", "throughput,latency,scale,rotation,micro"}, &stdout, &stderr); code != 0 {
		t.Fatalf("bench -quick exited %d; stderr:\n%s", code, stderr.String())
	}
	var rep benchReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
	}

	if rep.Runs != 1 || rep.Machine.CPUs < 1 || rep.Machine.GoVersion == "" || !strings.Contains(rep.Note, "share this process") {
		t.Errorf("header: runs %d, machine %+v, note %q", rep.Runs, rep.Machine, rep.Note)
	}

	wantPaths := map[string]bool{
		"bridge core qos0": false, "bridge core qos1": false, "bridge jetstream qos0": false, "bridge jetstream qos1": false,
		"paho qos0 receive": false, "paho qos1 receive": false, "nats core publish": false, "nats jetstream publish": false,
	}
	for _, p := range rep.Throughput {
		if _, ok := wantPaths[p.key()]; !ok {
			t.Errorf("unexpected throughput path %q", p.key())
			continue
		}
		wantPaths[p.key()] = true
		if p.MsgPerSec <= 0 || p.CPUPerMsg <= 0 {
			t.Errorf("%s: %.0f msg/s, %.1f µs/msg: want both positive", p.key(), p.MsgPerSec, p.CPUPerMsg)
		}
	}
	for k, seen := range wantPaths {
		if !seen {
			t.Errorf("throughput: %s missing", k)
		}
	}
	if len(rep.Compare) != 4 {
		t.Errorf("comparison rows = %d, want 4", len(rep.Compare))
	}
	for _, c := range rep.Compare {
		if c.RateRatio <= 0 || c.CeilingCPU <= 0 || c.CPURatio <= 0 {
			t.Errorf("comparison %+v: want positive ratios", c)
		}
	}

	if len(rep.Latency) == 0 {
		t.Error("latency section missing")
	}
	for _, p := range rep.Latency {
		if p.Samples <= 0 || p.P50 <= 0 || p.P99 < p.P50 || p.Max < p.P99 {
			t.Errorf("latency %+v: want samples and 0 < p50 <= p99 <= max", p)
		}
	}

	if len(rep.Scale) == 0 {
		t.Error("scale section missing")
	}
	for _, p := range rep.Scale {
		if p.Streams <= 0 || p.RSSTotal <= 0 || p.GoroutinesPerSt <= 0 || p.MsgPerSec <= 0 {
			t.Errorf("scale %+v: want streams, RSS, goroutines per stream and messages", p)
		}
	}

	if r := rep.Rotation; r == nil {
		t.Error("rotation section missing")
	} else {
		if r.Rotations < 1 || r.Messages <= 0 || r.MaxGap <= 0 || r.Interval <= 0 {
			t.Errorf("rotation %+v: want rotations, messages and gaps", *r)
		}
		// What the README promises of rotations (make-before-break, then
		// the old connection drained; copies from the overlap suppressed):
		// every seq up to the end reaches NATS exactly once.
		if r.Lost != 0 || r.Duplicated != 0 {
			t.Errorf("rotation: %.0f lost, %.0f duplicated over %.0f rotations (%.0f messages); want 0 and 0",
				r.Lost, r.Duplicated, r.Rotations, r.Messages)
		}
	}

	if len(rep.Micro) < 3 {
		t.Errorf("micro rows = %d, want 3", len(rep.Micro))
	}
	for _, p := range rep.Micro {
		if p.NsPerOp <= 0 {
			t.Errorf("micro %+v: want ns/op", p)
		}
	}

	// The text form has every section too.
	var text bytes.Buffer
	rep.print(&text)
	for _, h := range []string{"## Throughput", "bridge vs ceilings", "## Added latency", "## Scale", "## Rotation", "## Per-message path"} {
		if !strings.Contains(text.String(), h) {
			t.Errorf("text report lacks %q", h)
		}
	}
}

// TestBenchCluster runs `bench -quick -only cluster`: three bridge processes
// with one killed per mode, and the KV cost of a steady cluster. It checks
// what the README promises of two replicas (a kill loses nothing) and that
// every figure is there; it asserts no speed.
func TestBenchCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three bridge processes per mode for several seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := benchCommand(ctx, []string{"-quick", "-json", "-only", "cluster"}, &stdout, &stderr); code != 0 {
		t.Fatalf("bench -quick -only cluster exited %d; stderr:\n%s", code, stderr.String())
	}
	var rep benchReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
	}
	if len(rep.Failover) != len(clusterModes) {
		t.Fatalf("failover rows = %d, want %d", len(rep.Failover), len(clusterModes))
	}
	for _, p := range rep.Failover {
		if p.Moved < 1 || p.Takeover <= 0 || p.TakeMax < p.Takeover {
			t.Errorf("%s: moved %.0f, takeover %.2f s, worst %.2f s: want a takeover measured", p.Mode, p.Moved, p.Takeover, p.TakeMax)
		}
		if p.Dup != 0 {
			t.Errorf("%s: %.0f seqs duplicated, want 0", p.Mode, p.Dup)
		}
		if strings.HasSuffix(p.Mode, "replicas=2") && p.Lost != 0 {
			t.Errorf("%s: %.0f seqs lost when a member was killed, want 0", p.Mode, p.Lost)
		}
	}
	if len(rep.KV) != 1 || rep.KV[0].OpsPerSec <= 0 || rep.KV[0].ServerOut <= 0 {
		t.Errorf("kv rows %+v: want the KV operations measured", rep.KV)
	}
	var text bytes.Buffer
	rep.print(&text)
	for _, h := range []string{"## Cluster failover", "## Cluster KV cost"} {
		if !strings.Contains(text.String(), h) {
			t.Errorf("text report lacks %q", h)
		}
	}
}
