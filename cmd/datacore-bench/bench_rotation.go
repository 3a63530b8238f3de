package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/internal/testbed"
	"github.com/datacore-bridge/datacore-bridge/sim"
	"github.com/datacore-bridge/datacore-bridge/sink"
)

// rotPoint is the result of the rotation benchmark.
type rotPoint struct {
	Rate          float64 `json:"rate"`
	GrantTTL      float64 `json:"grantTTLSeconds"`
	Rotations     float64 `json:"rotations"`
	Messages      float64 `json:"messages"`     // received in the checked range
	Lost          float64 `json:"lost"`         // seqs never received
	Duplicated    float64 `json:"duplicated"`   // receipts of a seq already received
	Suppressed    float64 `json:"suppressed"`   // copies the bridge dropped as duplicates (seen on both connections)
	MaxGap        float64 `json:"maxGapMillis"` // longest time between two consecutive receipts
	Interval      float64 `json:"intervalMillis"`
	EmulatorDrops float64 `json:"emulatorDropped"`
}

// seqWatch records, per subject, which seqs arrived how often, and the
// longest time between two consecutive receipts.
type seqWatch struct {
	mu     sync.Mutex
	seen   map[string]map[uint64]int // subject -> seq -> receipts
	first  map[string]uint64
	last   time.Time
	maxGap time.Duration
}

func newSeqWatch() *seqWatch {
	return &seqWatch{seen: map[string]map[uint64]int{}, first: map[string]uint64{}}
}

func (w *seqWatch) take(m *nats.Msg) {
	now := time.Now()
	seq, ok := jsonInt(m.Data, keySeq)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.last.IsZero() {
		w.maxGap = max(w.maxGap, now.Sub(w.last))
	}
	w.last = now
	s := w.seen[m.Subject]
	if s == nil {
		s = map[uint64]int{}
		w.seen[m.Subject] = s
		w.first[m.Subject] = uint64(seq)
	}
	s[uint64(seq)]++
}

// reached reports whether every subject has received a seq of at least want[kind].
func (w *seqWatch) reached(want map[string]uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for kind, seq := range want {
		found := false
		for subj, s := range w.seen {
			if strings.HasSuffix(subj, "."+kind) {
				found = true
				if _, ok := s[seq]; !ok {
					return false
				}
			}
		}
		if !found && seq > 0 {
			return false
		}
	}
	return true
}

// tally counts receipts, lost and duplicated seqs per subject over
// [first received, want[kind]].
func (w *seqWatch) tally(want map[string]uint64) (msgs, lost, dup int, gap time.Duration) {
	return w.tallyPrefix("", want)
}

// tallyPrefix is tally over the subjects that start with prefix.
func (w *seqWatch) tallyPrefix(prefix string, want map[string]uint64) (msgs, lost, dup int, gap time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for subj, s := range w.seen {
		if !strings.HasPrefix(subj, prefix) {
			continue
		}
		kind := subj[strings.LastIndexByte(subj, '.')+1:]
		end, ok := want[kind]
		if !ok {
			continue
		}
		for seq := w.first[subj]; seq <= end; seq++ {
			n := s[seq]
			msgs += n
			if n == 0 {
				lost++
			} else {
				dup += n - 1
			}
		}
	}
	return msgs, lost, dup, w.maxGap
}

// runRotation follows one fixture fed at o.rotRate with grants valid for
// o.rotTTL, until the bridge has rotated o.rotations times, and checks that
// every message reached NATS once.
func runRotation(ctx context.Context, o benchOpts, log *slog.Logger) (rotPoint, error) {
	p := rotPoint{Rate: o.rotRate, GrantTTL: o.rotTTL.Seconds(), Interval: 1000 / o.rotRate}
	emu, err := startBenchSim(ctx, []string{benchFixture}, sim.Feed{Rate: o.rotRate, PayloadSize: benchPayloadSize}, o.rotTTL)
	if err != nil {
		return p, err
	}
	defer emu.Close()
	ns, err := startBenchNATS(false)
	if err != nil {
		return p, err
	}
	defer ns.Close()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return p, err
	}
	defer nc.Close()
	w := newSeqWatch()
	if _, err := nc.Subscribe("datacore.>", w.take); err != nil {
		return p, err
	}
	if err := nc.Flush(); err != nil {
		return p, err
	}
	b, err := startBenchBridge(ctx, benchBridge{
		apiURL: emu.APIURL(), natsURL: ns.ClientURL(), fixtures: []string{benchFixture}, qos: 1,
	}, log)
	if err != nil {
		return p, err
	}
	defer func() { _ = b.Shutdown(context.Background()) }()

	rotations := func() float64 { return testbed.CounterSum(b.Metrics().Rotations.WithLabelValues("ok")) }
	limit := time.Duration(o.rotations+2)*o.rotTTL + 20*time.Second
	if err := poll.Until(ctx, limit, fmt.Sprintf("%d rotations", o.rotations), func() bool {
		return rotations() >= float64(o.rotations)
	}); err != nil {
		return p, err
	}
	// Let the last rotation's old connection close, then check up to what
	// the emulator has published by now.
	if !sleepCtx(ctx, 300*time.Millisecond) {
		return p, ctx.Err()
	}
	want := map[string]uint64{}
	for _, sc := range benchScopes {
		want[sink.KindFromScope(sc)] = emu.LastSeq("fixture", benchFixture, sc)
	}
	if err := poll.Until(ctx, 10*time.Second, "the last messages", func() bool { return w.reached(want) }); err != nil {
		// Report what is missing rather than fail.
		log.Warn("rotation: not every message arrived", "err", err)
	}
	msgs, lost, dup, gap := w.tally(want)
	p.Rotations = rotations()
	p.Messages, p.Lost, p.Duplicated = float64(msgs), float64(lost), float64(dup)
	p.MaxGap = float64(gap) / float64(time.Millisecond)
	p.Suppressed = testbed.CounterSum(b.Metrics().Duplicates)
	p.EmulatorDrops = float64(emu.Stats().Dropped)
	return p, nil
}
