// Command datacore-bench runs the local Datacore emulator, an embedded NATS
// server and the bridge in this process and reports throughput, CPU per
// message, latency, the cost of idle streams and message loss across URL
// rotations.
//
//	go run ./cmd/datacore-bench [-quick] [-json] [-only sections] [-h]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/datacore-bridge/datacore-bridge/internal/bridge"
)

// benchOpts are the benchmark's knobs; -quick shrinks them.
type benchOpts struct {
	runs     int
	sections map[string]bool
	paths    map[string]bool // throughput paths: bridge, paho, nats

	warm    time.Duration // after the first message, before measuring
	tputDur time.Duration // throughput window

	latRates    []float64
	latDur      time.Duration
	pahoLatency bool

	scaleStreams   []int
	scaleInProcess bool
	scaleBaseline  time.Duration
	scaleConnect   time.Duration // limit for all streams to connect
	scaleWindow    time.Duration

	rotations int
	rotRate   float64
	rotTTL    time.Duration

	microDur time.Duration

	clusterMembers  int
	clusterFixtures int
	clusterRate     float64
	clusterTTL      time.Duration
	kvCases         []kvCase
	kvWindow        time.Duration
}

// kvCase is one steady cluster whose KV cost is measured.
type kvCase struct{ members, ids, replicas int }

// benchSections are the report's sections, in order.
var benchSections = []string{"throughput", "latency", "scale", "rotation", "micro", "cluster"}

func fullBenchOpts() benchOpts {
	return benchOpts{
		runs:            3,
		warm:            time.Second,
		tputDur:         3 * time.Second,
		latRates:        []float64{1000, 10000},
		latDur:          4 * time.Second,
		pahoLatency:     true,
		scaleStreams:    []int{1000, 2000},
		scaleBaseline:   2 * time.Second,
		scaleConnect:    60 * time.Second,
		scaleWindow:     8 * time.Second,
		rotations:       20,
		rotRate:         1000,
		rotTTL:          2 * time.Second,
		microDur:        500 * time.Millisecond,
		scaleInProcess:  false,
		clusterMembers:  3,
		clusterFixtures: 6,
		clusterRate:     50,
		clusterTTL:      10 * time.Second,
		kvCases: []kvCase{
			{1, 1000, 1}, {3, 1000, 1}, {5, 1000, 1}, {3, 100, 1}, {3, 5000, 1}, {3, 1000, 2},
		},
		kvWindow: 10 * time.Second,
	}
}

func quickBenchOpts() benchOpts {
	return benchOpts{
		runs:            1,
		warm:            200 * time.Millisecond,
		tputDur:         400 * time.Millisecond,
		latRates:        []float64{1000},
		latDur:          time.Second,
		scaleStreams:    []int{20},
		scaleInProcess:  true,
		scaleBaseline:   300 * time.Millisecond,
		scaleConnect:    15 * time.Second,
		scaleWindow:     1500 * time.Millisecond,
		rotations:       3,
		rotRate:         1000, // as the full run: at 200 msg/s a rotation that loses a few ms of messages goes unseen
		rotTTL:          2 * time.Second,
		microDur:        50 * time.Millisecond,
		clusterMembers:  3,
		clusterFixtures: 3,
		clusterRate:     20,
		clusterTTL:      2 * time.Second,
		kvCases:         []kvCase{{2, 100, 1}},
		kvWindow:        2 * time.Second,
	}
}

// benchCommand runs the emulator, an embedded NATS server and the bridge in
// this process and prints what they achieve.
func benchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("datacore-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		runs       = fs.Int("runs", 3, "runs of every benchmark; the report shows medians")
		quick      = fs.Bool("quick", false, "a short smoke version: one run, small and brief")
		asJSON     = fs.Bool("json", false, "print the report as JSON")
		only       = fs.String("only", strings.Join(benchSections, ","), "comma-separated sections to run: "+strings.Join(benchSections, ", "))
		cpuProfile = fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
		paths      = fs.String("paths", "bridge,paho,nats", "throughput paths to run: bridge, paho (the MQTT ceiling), nats (the NATS ceiling)")
		inProc     = fs.Bool("scale-in-process", false, "run the scale benchmark's emulator in this process (its memory and CPU then count)")
		logLevel   = fs.String("log-level", "error", "bridge log level: debug, info, warn or error")
		child      = fs.Int("emulator-child", 0, "internal: run the scale benchmark's emulator for this many fixtures")
	)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: datacore-bench [flags]\n\nRuns the local Datacore emulator, an embedded NATS server and the bridge in this\nprocess and reports throughput, CPU per message, latency, the cost of idle\nstreams and message loss across URL rotations, as medians of several runs.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *child > 0 {
		if err := emulatorChild(ctx, *child, stdout); err != nil {
			fmt.Fprintln(stderr, "bench emulator:", err)
			return 1
		}
		return 0
	}
	o := fullBenchOpts()
	if *quick {
		o = quickBenchOpts()
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["runs"] {
		if *runs < 1 {
			fmt.Fprintln(stderr, "bench: -runs must be at least 1")
			return 2
		}
		o.runs = *runs
	}
	if *inProc {
		o.scaleInProcess = true
	}
	o.sections = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(benchSections, s) {
			fmt.Fprintf(stderr, "bench: -only: unknown section %q\n", s)
			return 2
		}
		o.sections[s] = true
	}
	o.paths = map[string]bool{}
	for _, s := range strings.Split(*paths, ",") {
		s = strings.TrimSpace(s)
		if s != "bridge" && s != "paho" && s != "nats" {
			fmt.Fprintf(stderr, "bench: -paths: unknown path %q\n", s)
			return 2
		}
		o.paths[s] = true
	}
	log, err := bridge.NewLogger(*logLevel, "text", stderr)
	if err != nil {
		fmt.Fprintln(stderr, "-log-level:", err)
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := runBench(ctx, o, log, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	rep.Command = strings.TrimSpace("datacore-bench " + strings.Join(args, " "))
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return 1
		}
		return 0
	}
	rep.print(stdout)
	return 0
}

// benchReport is the result: medians over the runs.
type benchReport struct {
	Command    string       `json:"command"`
	Machine    machine      `json:"machine"`
	Runs       int          `json:"runs"`
	Note       string       `json:"note"`
	Throughput []tputPoint  `json:"throughput,omitempty"`
	Compare    []comparison `json:"comparison,omitempty"`
	Latency    []latPoint   `json:"latency,omitempty"`
	Scale      []scalePoint `json:"scale,omitempty"`
	Rotation   *rotPoint    `json:"rotation,omitempty"`
	Micro      []microPoint `json:"micro,omitempty"`
	Failover   []failPoint  `json:"failover,omitempty"`
	KV         []kvPoint    `json:"kv,omitempty"`
}

type machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpuModel"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
}

// comparison sets a bridge mode against the ceilings of its two halves.
type comparison struct {
	Bridge string `json:"bridge"`
	// RateRatio is the bridge's msg/s over the slower ceiling's.
	RateRatio float64 `json:"rateRatio"`
	// CeilingCPU is paho's plus nats.go's CPU per message, µs.
	CeilingCPU float64 `json:"ceilingCPUMicrosPerMsg"`
	// CPURatio is the bridge's CPU per message over CeilingCPU.
	CPURatio float64 `json:"cpuRatio"`
	// OwnCPU is the bridge's CPU per message minus CeilingCPU: what the
	// bridge adds, µs.
	OwnCPU float64 `json:"ownCPUMicrosPerMsg"`
}

const benchNote = "The emulator (mochi-mqtt broker and feed), the NATS server and the bridge share this process: " +
	"every CPU figure is the whole process's (getrusage), so a bridge figure includes the emulator's and the NATS server's work. " +
	"The ceilings are measured the same way (paho: emulator + paho, no NATS; nats: nats.go + NATS server, no MQTT), " +
	"so the bridge's CPU per message is compared with the sum of the two; the difference is the bridge's own work."

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// runBench runs every section o.runs times and keeps medians: the scale runs
// first, then the others interleaved, so that a noisy moment hits one run of
// each rather than every run of one.
func runBench(ctx context.Context, o benchOpts, log *slog.Logger, progress io.Writer) (*benchReport, error) {
	rep := &benchReport{
		Machine: machine{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH},
		Runs:    o.runs,
		Note:    benchNote,
	}
	var (
		tput  [][]tputPoint
		lat   [][]latPoint
		scale [][]scalePoint
		rot   []rotPoint
		micro [][]microPoint
		fail  [][]failPoint
		kv    [][]kvPoint
	)
	step := func(name string, r int) func() {
		t := time.Now()
		fmt.Fprintf(progress, "bench: run %d/%d: %s...", r+1, o.runs, name)
		return func() { fmt.Fprintf(progress, " %s\n", time.Since(t).Round(100*time.Millisecond)) }
	}
	// Scale first, every run: streams started after the flood benchmarks
	// inherit their larger goroutine stacks and heap, which is not the
	// cost of an idle stream.
	if o.sections["scale"] {
		for r := range o.runs {
			done := step("scale", r)
			p, err := runScale(ctx, o, log)
			if err != nil {
				return nil, fmt.Errorf("scale: %w", err)
			}
			scale = append(scale, p)
			done()
		}
	}
	for r := range o.runs {
		if o.sections["throughput"] {
			done := step("throughput", r)
			p, err := runThroughput(ctx, o, log)
			if err != nil {
				return nil, fmt.Errorf("throughput: %w", err)
			}
			tput = append(tput, p)
			done()
		}
		if o.sections["latency"] {
			done := step("latency", r)
			p, err := runLatency(ctx, o, log)
			if err != nil {
				return nil, fmt.Errorf("latency: %w", err)
			}
			lat = append(lat, p)
			done()
		}
		if o.sections["rotation"] {
			done := step("rotation", r)
			p, err := runRotation(ctx, o, log)
			if err != nil {
				return nil, fmt.Errorf("rotation: %w", err)
			}
			rot = append(rot, p)
			done()
		}
		if o.sections["cluster"] {
			done := step("cluster failover", r)
			p, err := runClusterFailover(ctx, o, r, log)
			if err != nil {
				return nil, fmt.Errorf("cluster failover: %w", err)
			}
			fail = append(fail, p)
			done()
			done = step("cluster kv", r)
			var row []kvPoint
			for _, c := range o.kvCases {
				p, err := benchKV(ctx, c.members, c.ids, c.replicas, o.clusterTTL, o.kvWindow)
				if err != nil {
					return nil, fmt.Errorf("cluster kv: %w", err)
				}
				row = append(row, p)
			}
			kv = append(kv, row)
			done()
		}
		if o.sections["micro"] {
			done := step("micro", r)
			p, err := runMicro(ctx, o)
			if err != nil {
				return nil, fmt.Errorf("micro: %w", err)
			}
			micro = append(micro, p)
			done()
		}
	}
	rep.Throughput = medianRows(tput)
	rep.Compare = compare(rep.Throughput)
	rep.Latency = medianRows(lat)
	rep.Scale = medianRows(scale)
	if len(rot) > 0 {
		m := medianOf(rot)
		// Loss, duplication and the gap are the worst run's, not the median.
		m.Lost, m.Duplicated, m.MaxGap = 0, 0, 0
		for _, p := range rot {
			m.Lost, m.Duplicated, m.MaxGap = max(m.Lost, p.Lost), max(m.Duplicated, p.Duplicated), max(m.MaxGap, p.MaxGap)
		}
		rep.Rotation = &m
	}
	rep.Micro = medianRows(micro)
	rep.KV = medianRows(kv)
	rep.Failover = medianRows(fail)
	// The worst takeover and loss are the worst run's, not the median.
	for i := range rep.Failover {
		for _, run := range fail {
			if i < len(run) {
				rep.Failover[i].TakeMax = max(rep.Failover[i].TakeMax, run[i].TakeMax)
				rep.Failover[i].LostMax = max(rep.Failover[i].LostMax, run[i].LostMax)
				rep.Failover[i].Dup = max(rep.Failover[i].Dup, run[i].Dup)
			}
		}
	}
	return rep, nil
}

// medianRows returns, row by row, the median of every float64 field over the
// runs; other fields are taken from the first run.
func medianRows[T any](runs [][]T) []T {
	if len(runs) == 0 {
		return nil
	}
	out := slices.Clone(runs[0])
	for i := range out {
		var col []T
		for _, r := range runs {
			if i < len(r) {
				col = append(col, r[i])
			}
		}
		out[i] = medianOf(col)
	}
	return out
}

// medianOf takes the median of every float64 field of rows (through JSON, to
// stay independent of the row type).
func medianOf[T any](rows []T) T {
	maps := make([]map[string]any, len(rows))
	for i, r := range rows {
		b, _ := json.Marshal(r)
		_ = json.Unmarshal(b, &maps[i])
	}
	merged := maps[0]
	for k, v := range merged {
		if _, ok := v.(float64); !ok {
			continue
		}
		var vals []float64
		for _, m := range maps {
			if f, ok := m[k].(float64); ok {
				vals = append(vals, f)
			}
		}
		merged[k] = median(vals)
	}
	var out T
	b, _ := json.Marshal(merged)
	_ = json.Unmarshal(b, &out)
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// compare sets every bridge mode against the matching ceilings.
func compare(points []tputPoint) []comparison {
	find := func(key string) (tputPoint, bool) {
		for _, p := range points {
			if p.key() == key {
				return p, true
			}
		}
		return tputPoint{}, false
	}
	var out []comparison
	for _, b := range points {
		if b.Path != "bridge" {
			continue
		}
		mq, ok1 := find(fmt.Sprintf("paho qos%d receive", b.QoS))
		nk := "nats core publish"
		if b.JetStream {
			nk = "nats jetstream publish"
		}
		nt, ok2 := find(nk)
		if !ok1 || !ok2 {
			continue
		}
		c := comparison{Bridge: b.key(), CeilingCPU: mq.CPUPerMsg + nt.CPUPerMsg}
		if slower := min(mq.MsgPerSec, nt.MsgPerSec); slower > 0 {
			c.RateRatio = b.MsgPerSec / slower
		}
		if c.CeilingCPU > 0 {
			c.CPURatio = b.CPUPerMsg / c.CeilingCPU
		}
		c.OwnCPU = b.CPUPerMsg - c.CeilingCPU
		out = append(out, c)
	}
	return out
}

// print writes the report as tables.
func (r *benchReport) print(w io.Writer) {
	fmt.Fprintf(w, "datacore-bench: medians of %d run(s)\n", r.Runs)
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s %s\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.GoVersion, r.Machine.OS)
	fmt.Fprintf(w, "note: %s\n", r.Note)
	if len(r.Throughput) > 0 {
		fmt.Fprintf(w, "\n## Throughput: one fixture (%d topics), ~%d-byte payloads, flood\n", len(benchScopes), benchPayloadSize)
		fmt.Fprintf(w, "%-26s %12s %14s\n", "path", "msg/s", "CPU µs/msg")
		for _, p := range r.Throughput {
			fmt.Fprintf(w, "%-26s %12s %14.1f\n", p.key(), thousands(p.MsgPerSec), p.CPUPerMsg)
		}
		fmt.Fprintf(w, "\n%-26s %12s %16s %10s %14s\n", "bridge vs ceilings", "rate ratio", "ceiling µs/msg", "CPU ratio", "own µs/msg")
		for _, c := range r.Compare {
			fmt.Fprintf(w, "%-26s %12.2f %16.1f %10.2f %14.1f\n", c.Bridge, c.RateRatio, c.CeilingCPU, c.CPURatio, c.OwnCPU)
		}
		fmt.Fprintln(w, "(rate ratio: bridge msg/s over the slower of its paho and nats ceilings; CPU ratio: bridge CPU per message over paho's plus nats.go's)")
	}
	if len(r.Latency) > 0 {
		fmt.Fprintf(w, "\n## Added latency: emulator publish (data.sentAt) to NATS subscriber, QoS 1, core NATS\n")
		fmt.Fprintf(w, "%-10s %9s %9s %9s %9s   %-28s\n", "msg/s", "p50 ms", "p99 ms", "max ms", "samples", "paho direct p50/p99/max ms")
		for _, p := range r.Latency {
			paho := "-"
			if p.PahoSamp > 0 {
				paho = fmt.Sprintf("%.2f / %.2f / %.2f", p.PahoP50, p.PahoP99, p.PahoMax)
			}
			fmt.Fprintf(w, "%-10s %9.2f %9.2f %9.2f %9.0f   %-28s\n", thousands(p.Rate), p.P50, p.P99, p.Max, p.Samples, paho)
		}
	}
	if len(r.Scale) > 0 {
		fmt.Fprintf(w, "\n## Scale: idle streams at 1 msg/s each (%d topics each), per stream after a baseline\n", len(benchScopes))
		fmt.Fprintf(w, "%-8s %9s %9s %11s %11s %11s %12s %13s %10s %9s\n", "streams", "emulator", "connect s", "RSS KiB/st", "heap KiB/st", "goroutines", "CPU % core", "CPU µs/st/s", "RSS MiB", "msg/s")
		for _, p := range r.Scale {
			where := "child"
			if p.EmulatorInProc {
				where = "in-proc"
			}
			fmt.Fprintf(w, "%-8.0f %9s %9.1f %11.1f %11.1f %11.2f %12.1f %13.1f %10.1f %9.0f\n",
				p.Streams, where, p.ConnectSeconds, p.RSSPerStream, p.HeapPerStream, p.GoroutinesPerSt, p.CPUShare, p.CPUPerStream, p.RSSTotal, p.MsgPerSec)
		}
		fmt.Fprintln(w, "(emulator \"child\": in its own process, so the figures are the bridge's and the NATS server's alone)")
	}
	if r.Rotation != nil {
		p := r.Rotation
		fmt.Fprintf(w, "\n## Rotation: %.0f msg/s, grants valid %.0f s, QoS 1, core NATS (lost, duplicated, gap: worst run)\n", p.Rate, p.GrantTTL)
		fmt.Fprintf(w, "%-10s %10s %6s %11s %11s %12s %12s %10s\n", "rotations", "messages", "lost", "duplicated", "suppressed", "max gap ms", "interval ms", "emu drops")
		fmt.Fprintf(w, "%-10.0f %10.0f %6.0f %11.0f %11.0f %12.1f %12.2f %10.0f\n", p.Rotations, p.Messages, p.Lost, p.Duplicated, p.Suppressed, p.MaxGap, p.Interval, p.EmulatorDrops)
		fmt.Fprintln(w, "(suppressed: copies seen on both connections during a rotation, published once)")
	}
	if len(r.Micro) > 0 {
		fmt.Fprintf(w, "\n## Per-message path (%d-byte payload)\n", benchPayloadSize)
		fmt.Fprintf(w, "%-48s %10s %8s %10s\n", "step", "ns/op", "B/op", "allocs/op")
		for _, p := range r.Micro {
			fmt.Fprintf(w, "%-48s %10.0f %8.0f %10.1f\n", p.Name, p.NsPerOp, p.BytesPerOp, p.AllocsPerOp)
		}
		fmt.Fprintln(w, "(more, including dedup and the whole handle path: go test -run '^$' -bench . -benchmem ./fixtures/ ./sink/ ./mqttclient/)")
	}
	if len(r.Failover) > 0 {
		p := r.Failover[0]
		fmt.Fprintf(w, "\n## Cluster failover: %.0f bridge processes, %.0f fixtures at %.0f msg/s each, lease TTL %.0f s, one member killed (SIGKILL)\n",
			p.Members, p.Fixtures, p.Rate, p.LeaseTTL)
		fmt.Fprintf(w, "%-22s %7s %12s %14s %14s %12s %11s %11s\n", "mode", "moved", "takeover s", "worst s", "metric s", "lost/fail", "lost worst", "duplicated")
		for _, p := range r.Failover {
			fmt.Fprintf(w, "%-22s %7.0f %12.2f %14.2f %14.2f %12.0f %11.0f %11.0f\n", p.Mode, p.Moved, p.Takeover, p.TakeMax, p.Metric, p.Lost, p.LostMax, p.Dup)
		}
		fmt.Fprintln(w, "(takeover: SIGKILL to every moved stream connected on a survivor, median over the moved streams; metric: cluster_failover_seconds,")
		fmt.Fprintln(w, " from the lost owner's last renewal; lost: seqs of the moved fixtures never stored (JetStream: in the stream) or received (core);")
		fmt.Fprintln(w, " duplicated: seqs stored or received twice, all fixtures; worst: over the runs)")
	}
	if len(r.KV) > 0 {
		fmt.Fprintf(w, "\n## Cluster KV cost, steady state (streams connect at once), lease TTL %.0f s\n", r.KV[0].LeaseTTL)
		fmt.Fprintf(w, "%-8s %7s %9s %12s %16s %16s %17s\n", "members", "IDs", "replicas", "KV ops/s", "ops/s per 1000", "server in msg/s", "server out msg/s")
		for _, p := range r.KV {
			fmt.Fprintf(w, "%-8.0f %7.0f %9.0f %12.1f %16.1f %16.1f %17.1f\n", p.Members, p.IDs, p.Replicas, p.OpsPerSec, p.OpsPer1000, p.ServerInMsg, p.ServerOut)
		}
		fmt.Fprintln(w, "(KV ops: creates, updates, deletes and gets by every member; server out: what the NATS server delivered, watchers included)")
	}
}

// thousands formats v rounded, with thousands separators.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
