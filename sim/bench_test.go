package sim

import (
	"testing"
	"time"
)

// BenchmarkFlood measures how many messages per second one flooding fixture
// delivers through the broker to one paho subscriber over WebSocket.
func BenchmarkFlood(b *testing.B) {
	for _, bc := range []struct {
		name string
		qos  byte
		feed Feed
	}{
		{name: "qos1", qos: 1, feed: Feed{Flood: true}},
		{name: "qos0", qos: 0, feed: Feed{Flood: true}},
		{name: "qos1-1KiB", qos: 1, feed: Feed{Flood: true, PayloadSize: 1024}},
		{name: "qos1-compressed", qos: 1, feed: Feed{Flood: true, Compress: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := startSim(b, Options{Fixtures: []string{"F1"}, Feed: bc.feed})
			g := grantOf(b, s, "F1", false, ScopeEvents, ScopeStatus, ScopePlayByPlay, ScopeStatistics)
			c := mustDial(b, g.URL, g.ClientID)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			c.subscribe(b, bc.qos, topicsOf(g)...)
			for range b.N {
				select {
				case <-c.msgs:
				case <-time.After(waitLimit):
					b.Fatal("no message")
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
			b.StopTimer()
			b.ReportMetric(float64(s.Stats().Dropped), "dropped")
		})
	}
}
