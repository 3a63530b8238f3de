package access

import (
	"testing"
	"time"
)

func TestParseExpiry(t *testing.T) {
	issued := time.Date(2024, 3, 15, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		url         string
		wantIssued  time.Time
		wantExpires time.Time
		wantOK      bool
	}{
		{name: "valid", url: "wss://h/mqtt?X-Amz-Date=20240315T120000Z&X-Amz-Expires=3600&X-Amz-Signature=x",
			wantIssued: issued, wantExpires: issued.Add(time.Hour), wantOK: true},
		{name: "short grant", url: "ws://127.0.0.1:1/mqtt?X-Amz-Expires=5&X-Amz-Date=20240315T120000Z",
			wantIssued: issued, wantExpires: issued.Add(5 * time.Second), wantOK: true},
		{name: "lower-case keys", url: "wss://h/mqtt?x-amz-date=20240315T120000Z&x-amz-expires=60",
			wantIssued: issued, wantExpires: issued.Add(time.Minute), wantOK: true},
		{name: "no query", url: "wss://h/mqtt"},
		{name: "missing date", url: "wss://h/mqtt?X-Amz-Expires=3600"},
		{name: "bad date", url: "wss://h/mqtt?X-Amz-Date=2024-03-15T12:00:00Z&X-Amz-Expires=3600"},
		{name: "missing expires", url: "wss://h/mqtt?X-Amz-Date=20240315T120000Z", wantIssued: issued},
		{name: "expires not a number", url: "wss://h/mqtt?X-Amz-Date=20240315T120000Z&X-Amz-Expires=1h", wantIssued: issued},
		{name: "expires zero", url: "wss://h/mqtt?X-Amz-Date=20240315T120000Z&X-Amz-Expires=0", wantIssued: issued},
		{name: "expires negative", url: "wss://h/mqtt?X-Amz-Date=20240315T120000Z&X-Amz-Expires=-5", wantIssued: issued},
		{name: "expires absurd", url: "wss://h/mqtt?X-Amz-Date=20240315T120000Z&X-Amz-Expires=99999999999999", wantIssued: issued},
		{name: "unparsable url", url: "wss://h/%zz?X-Amz-Date=20240315T120000Z&X-Amz-Expires=60"},
		{name: "empty", url: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotIssued, gotExpires, ok := ParseExpiry(tt.url)
			if !gotIssued.Equal(tt.wantIssued) || !gotExpires.Equal(tt.wantExpires) || ok != tt.wantOK {
				t.Errorf("ParseExpiry = %v, %v, %v; want %v, %v, %v", gotIssued, gotExpires, ok, tt.wantIssued, tt.wantExpires, tt.wantOK)
			}
		})
	}
}
