package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// scalePoint is the cost of many idle streams (1 msg/s each).
type scalePoint struct {
	Streams         float64 `json:"streams"`
	EmulatorInProc  bool    `json:"emulatorInProcess"` // the emulator's share is in the figures
	ConnectSeconds  float64 `json:"connectSeconds"`    // until every stream was connected
	MsgPerSec       float64 `json:"msgPerSec"`         // published, over the window
	RSSPerStream    float64 `json:"rssKiBPerStream"`   // (VmRSS - baseline) / streams
	HeapPerStream   float64 `json:"heapKiBPerStream"`  // (live Go heap - baseline) / streams
	GoroutinesPerSt float64 `json:"goroutinesPerStream"`
	CPUShare        float64 `json:"cpuPercentOfOneCore"` // process CPU over the window, minus baseline
	CPUPerStream    float64 `json:"cpuMicrosPerStreamSecond"`
	RSSBaseline     float64 `json:"rssBaselineMiB"`
	RSSTotal        float64 `json:"rssMiB"`
	EmulatorRSS     float64 `json:"emulatorRSSMiB,omitempty"` // the child process, when separate
}

// runScale measures each stream count of o.scaleStreams.
func runScale(ctx context.Context, o benchOpts, log *slog.Logger) ([]scalePoint, error) {
	var out []scalePoint
	for _, n := range o.scaleStreams {
		p, err := benchScale(ctx, o, n, log)
		if err != nil {
			return nil, fmt.Errorf("%d streams: %w", n, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func scaleFixtures(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "sr:match:" + strconv.Itoa(70000000+i)
	}
	return ids
}

// scaleEmulator is the emulator of a scale run: in a child process, so that
// its memory, goroutines and CPU are not the bridge's, or in this one.
type scaleEmulator struct {
	apiURL string
	inProc *sim.Server
	cmd    *exec.Cmd
	stdin  io.WriteCloser
}

func startScaleEmulator(ctx context.Context, n int, inProcess bool) (*scaleEmulator, error) {
	feed := sim.Feed{Rate: 1, PayloadSize: benchPayloadSize}
	if inProcess {
		s, err := startBenchSim(ctx, scaleFixtures(n), feed, 0)
		if err != nil {
			return nil, err
		}
		return &scaleEmulator{apiURL: s.APIURL(), inProc: s}, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-emulator-child", strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("emulator process: %w", err)
	}
	e := &scaleEmulator{cmd: cmd, stdin: stdin}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		if u, found := strings.CutPrefix(l, "api "); ok && found {
			e.apiURL = u
			return e, nil
		}
		e.close()
		return nil, errors.New("emulator process: no api line")
	case <-time.After(20 * time.Second):
		e.close()
		return nil, fmt.Errorf("emulator process: %w", poll.ErrTimeout)
	case <-ctx.Done():
		e.close()
		return nil, ctx.Err()
	}
}

func (e *scaleEmulator) rss() uint64 {
	if e.cmd == nil {
		return 0
	}
	return rssBytes(strconv.Itoa(e.cmd.Process.Pid))
}

func (e *scaleEmulator) close() {
	if e.inProc != nil {
		_ = e.inProc.Close()
		return
	}
	_ = e.stdin.Close() // the child stops at EOF
	done := make(chan struct{})
	go func() {
		_ = e.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = e.cmd.Process.Kill()
		<-done
	}
}

// emulatorChild runs the scale benchmark's emulator for n fixtures: it prints
// "api <url>" and runs until stdin is closed or ctx is done.
func emulatorChild(ctx context.Context, n int, stdout io.Writer) error {
	s, err := startBenchSim(ctx, scaleFixtures(n), sim.Feed{Rate: 1, PayloadSize: benchPayloadSize}, 0)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintln(stdout, "api "+s.APIURL())
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return nil
}

// liveHeap is the Go heap occupied by live and not-yet-swept objects.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// benchScale starts NATS and the bridge with nothing to follow, measures a
// baseline, follows n fixtures at 1 msg/s each, waits until all are
// connected, and measures again over a window.
func benchScale(ctx context.Context, o benchOpts, n int, log *slog.Logger) (scalePoint, error) {
	p := scalePoint{Streams: float64(n), EmulatorInProc: o.scaleInProcess}
	emu, err := startScaleEmulator(ctx, n, o.scaleInProcess)
	if err != nil {
		return p, err
	}
	defer emu.close()
	ns, err := startBenchNATS(false)
	if err != nil {
		return p, err
	}
	defer ns.Close()
	b, err := startBenchBridge(ctx, benchBridge{apiURL: emu.apiURL, natsURL: ns.ClientURL(), qos: 1}, log)
	if err != nil {
		return p, err
	}
	defer func() { _ = b.Shutdown(context.Background()) }()

	// Baseline: the bridge and NATS with nothing to follow, and the memory
	// earlier benchmarks left behind handed back to the OS.
	if !sleepCtx(ctx, 500*time.Millisecond) {
		return p, ctx.Err()
	}
	debug.FreeOSMemory()
	rss0, heap0, g0 := rssBytes("self"), liveHeap(), runtime.NumGoroutine()
	c0, t0 := cpuTime(), time.Now()
	if !sleepCtx(ctx, o.scaleBaseline) {
		return p, ctx.Err()
	}
	cpuBase := float64(cpuTime()-c0) / float64(time.Since(t0))

	started := time.Now()
	for _, id := range scaleFixtures(n) {
		if _, err := b.Supervisor().Follow(access.Fixture, id); err != nil {
			return p, err
		}
	}
	connected := func() bool {
		c := 0
		for _, si := range b.Supervisor().Streams() {
			if si.State == fixtures.StateConnected {
				c++
			}
		}
		return c == n
	}
	if err := poll.Until(ctx, o.scaleConnect, fmt.Sprintf("%d streams connected", n), connected); err != nil {
		return p, err
	}
	p.ConnectSeconds = time.Since(started).Seconds()
	runtime.GC() // the garbage of connecting is not the cost of an idle stream
	if !sleepCtx(ctx, 500*time.Millisecond) {
		return p, ctx.Err()
	}
	n0, c1, t1 := b.Published(), cpuTime(), time.Now()
	if !sleepCtx(ctx, o.scaleWindow) {
		return p, ctx.Err()
	}
	wall := time.Since(t1)
	cpu := float64(cpuTime()-c1) / float64(wall)
	p.MsgPerSec = float64(b.Published()-n0) / wall.Seconds()
	rss := rssBytes("self")
	runtime.GC()
	heap := liveHeap()
	g := runtime.NumGoroutine()

	p.RSSBaseline = float64(rss0) / (1 << 20)
	p.RSSTotal = float64(rss) / (1 << 20)
	p.RSSPerStream = (float64(rss) - float64(rss0)) / float64(n) / 1024
	p.HeapPerStream = (float64(heap) - float64(heap0)) / float64(n) / 1024
	p.GoroutinesPerSt = float64(g-g0) / float64(n)
	p.CPUShare = 100 * (cpu - cpuBase)
	p.CPUPerStream = 1e6 * (cpu - cpuBase) / float64(n)
	p.EmulatorRSS = float64(emu.rss()) / (1 << 20)
	return p, nil
}
