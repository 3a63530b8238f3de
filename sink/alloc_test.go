package sink

import (
	"context"
	"runtime"
	"testing"

	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
)

// TestNewJetStreamHugeMaxPendingAllocatesLittle checks that the in-flight bound is
// not allocated up front: a publisher allowed a billion pending messages costs what
// one allowed a thousand does.
func TestNewJetStreamHugeMaxPendingAllocatesLittle(t *testing.T) {
	s := natstest.Run(t)
	nc := connect(t, s, nil)
	const limit = 10 << 20
	tests := []struct {
		name       string
		maxPending int
	}{
		{"default", 0},
		{"four million", 1 << 22},
		{"one billion", 1 << 30},
		{"largest int", int(^uint(0) >> 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			p, err := NewJetStream(nc, JetStreamOptions{MaxPending: tt.maxPending})
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatalf("NewJetStream: %v", err)
			}
			defer p.Close(context.Background())
			if got := after.TotalAlloc - before.TotalAlloc; got > limit {
				t.Errorf("NewJetStream(MaxPending %d) allocated %d bytes, want at most %d", tt.maxPending, got, limit)
			}
		})
	}
}
