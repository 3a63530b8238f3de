package access

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestGrantSkew checks that the service's clock is measured from the Date
// header (or a future X-Amz-Date) and that a grant's times are moved onto
// the local clock only when the skew exceeds the Date header's resolution.
func TestGrantSkew(t *testing.T) {
	const ttl = 3 * time.Second
	tests := []struct {
		name     string
		offset   time.Duration // the service's clock minus the local one
		noDate   bool          // the response has no Date header
		wantSkew bool          // a skew is reported (about offset)
	}{
		{name: "clocks agree", offset: 0, wantSkew: false},
		{name: "service 10 min ahead", offset: 10 * time.Minute, wantSkew: true},
		{name: "service 10 min behind", offset: -10 * time.Minute, wantSkew: true},
		{name: "service 5 s behind", offset: -5 * time.Second, wantSkew: true},
		{name: "service ahead, no Date header: from X-Amz-Date", offset: 10 * time.Minute, noDate: true, wantSkew: true},
		{name: "service behind, no Date header: unknown", offset: -10 * time.Minute, noDate: true, wantSkew: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, func(w http.ResponseWriter, _ *http.Request) {
				now := time.Now().Add(tt.offset).UTC()
				issued := now.Truncate(time.Second)
				url := fmt.Sprintf("wss://h.example/mqtt?X-Amz-Date=%s&X-Amz-Expires=%d&X-Amz-Signature=x",
					issued.Format(amzDateLayout), int(ttl/time.Second))
				if tt.noDate {
					w.Header()["Date"] = nil // net/http adds none then
				} else {
					w.Header().Set("Date", now.Format(http.TimeFormat))
				}
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"data":{"url":%q,"clientId":"c1","topics":[{"topic":"t","scope":"read:stream_events","permission":"read"}]}}`, url)
			})
			c := newTestClient(t, api.apiURL(), appCreds(), nil)
			g, err := c.Access(t.Context(), fixtureReq())
			if err != nil {
				t.Fatalf("Access: %v", err)
			}
			if tt.noDate != g.ServerDate.IsZero() {
				t.Errorf("ServerDate = %v with noDate %v", g.ServerDate, tt.noDate)
			}
			if !tt.wantSkew {
				if g.Skew != 0 {
					t.Errorf("Skew = %v, want 0", g.Skew)
				}
			} else if d := g.Skew - tt.offset; d < -2*time.Second || d > 2*time.Second {
				t.Errorf("Skew = %v, want about %v", g.Skew, tt.offset)
			}
			// On the local clock, a fresh grant expires within ttl from now
			// (and not long before), whatever the service's clock says.
			left := time.Until(g.ExpiresAt)
			if tt.wantSkew || tt.offset == 0 {
				if left > ttl || left < ttl-2500*time.Millisecond {
					t.Errorf("ExpiresAt is %v from now, want within %v of it", left, ttl)
				}
			}
			if got := g.ExpiresAt.Sub(g.IssuedAt); got != ttl {
				t.Errorf("ExpiresAt - IssuedAt = %v, want %v", got, ttl)
			}
		})
	}
}

func TestMeasureSkew(t *testing.T) {
	received := time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	tests := []struct {
		name               string
		serverDate, issued time.Time
		want               time.Duration
	}{
		{name: "nothing known", want: 0},
		{name: "Date in the same second", serverDate: received.Truncate(time.Second), want: 0},
		{name: "Date half a second ahead: resolution", serverDate: received.Add(500 * time.Millisecond).Truncate(time.Second), want: 0},
		{name: "Date two seconds behind", serverDate: received.Truncate(time.Second).Add(-2 * time.Second), want: -2100 * time.Millisecond},
		{name: "Date a minute ahead", serverDate: received.Truncate(time.Second).Add(time.Minute), want: time.Minute - 100*time.Millisecond},
		{name: "Date a minute behind", serverDate: received.Truncate(time.Second).Add(-time.Minute), want: -time.Minute - 100*time.Millisecond},
		{name: "X-Amz-Date in the past says nothing", issued: received.Add(-time.Hour), want: 0},
		{name: "X-Amz-Date a minute ahead", issued: received.Truncate(time.Second).Add(time.Minute), want: time.Minute - 100*time.Millisecond},
		{name: "Date wins over X-Amz-Date", serverDate: received.Truncate(time.Second), issued: received.Add(time.Hour), want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := measureSkew(tt.serverDate, tt.issued, received); got != tt.want {
				t.Errorf("measureSkew = %v, want %v", got, tt.want)
			}
		})
	}
}
