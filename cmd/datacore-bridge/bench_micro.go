package main

import (
	"context"
	"runtime"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/datacore-bridge/datacore-bridge/sink"
)

// microPoint is the cost of one step of the per-message path.
type microPoint struct {
	Name        string  `json:"name"`
	NsPerOp     float64 `json:"nsPerOp"`
	BytesPerOp  float64 `json:"bytesPerOp"`
	AllocsPerOp float64 `json:"allocsPerOp"`
}

// microBench runs f(n) with growing n until one run lasts d, and reports the
// last run per operation. Allocations are the process's during the run
// (nothing else runs meanwhile).
func microBench(name string, d time.Duration, f func(n int)) microPoint {
	n := 100
	for {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		t0 := time.Now()
		f(n)
		el := time.Since(t0)
		runtime.ReadMemStats(&m1)
		if el >= d || n >= 1<<30 {
			return microPoint{
				Name:        name,
				NsPerOp:     float64(el.Nanoseconds()) / float64(n),
				BytesPerOp:  float64(m1.TotalAlloc-m0.TotalAlloc) / float64(n),
				AllocsPerOp: float64(m1.Mallocs-m0.Mallocs) / float64(n),
			}
		}
		next := int(float64(n) * 1.2 * float64(d) / float64(max(el, time.Microsecond)))
		n = min(max(next, n+1), 100*n)
	}
}

// runMicro measures the steps of the per-message path that are ours and
// exported: building the NATS message (subject precomputed per route,
// headers per message), the JetStream message id, and the hand-off of a
// message to a core publisher on an embedded NATS server. `go test -bench
// . ./fixtures/ ./sink/` has these and the rest (dedup, the whole handle path).
func runMicro(ctx context.Context, o benchOpts) ([]microPoint, error) {
	r := sink.NewRoute("datacore", "basketball", "fixture", benchFixture, "read:stream_events", "s/b/b1te1/60000001/r/e")
	payload := make([]byte, benchPayloadSize)
	now := time.Now()
	var out []microPoint
	var sinkMsg *nats.Msg
	out = append(out, microBench("sink.Route.Msg (subject + headers)", o.microDur, func(n int) {
		for range n {
			sinkMsg = r.Msg(payload, now)
		}
	}))
	_ = sinkMsg
	var id string
	out = append(out, microBench("sink.MsgID (Nats-Msg-Id, JetStream)", o.microDur, func(n int) {
		for range n {
			id = sink.MsgID(r.Subject, payload)
		}
	}))
	_ = id

	ns, err := startBenchNATS(false)
	if err != nil {
		return nil, err
	}
	defer ns.close()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	core := sink.NewCore(nc, sink.CoreOptions{})
	defer core.Close()
	done := func(error) {}
	var perr error
	out = append(out, microBench("Route.Msg + sink.Core.Publish (embedded NATS)", o.microDur, func(n int) {
		for range n {
			if err := core.Publish(ctx, r.Msg(payload, now), done); err != nil {
				perr = err
				return
			}
		}
	}))
	if perr != nil {
		return nil, perr
	}
	return out, nil
}
