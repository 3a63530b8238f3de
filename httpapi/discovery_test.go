package httpapi

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/datacore-bridge/datacore-bridge/discovery"
)

// fakeDiscovery reports a fixed status and readiness.
type fakeDiscovery struct {
	status discovery.Status
	ready  error
}

func (f fakeDiscovery) Status() discovery.Status { return f.status }
func (f fakeDiscovery) Ready() error             { return f.ready }

func TestDiscoveryEndpoint(t *testing.T) {
	last := time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)
	next := last.Add(time.Minute)
	tests := []struct {
		name       string
		disc       Discovery
		wantStatus int
		wantBody   string
	}{
		{"not enabled", nil, http.StatusNotFound, `{"error":"discovery is not enabled: no organization is followed"}` + "\n"},
		{
			name: "status",
			disc: fakeDiscovery{status: discovery.Status{Organizations: []string{"o1", "o2"}, LastListingAt: &last, NextPollAt: &next,
				LastError: "discovery: listing organization o2: service unavailable (503)", Discovered: 3}},
			wantStatus: http.StatusOK,
			wantBody: `{"organizations":["o1","o2"],"lastListingAt":"2026-11-30T18:00:00Z","nextPollAt":"2026-11-30T18:01:00Z",` +
				`"lastError":"discovery: listing organization o2: service unavailable (503)","discovered":3}` + "\n",
		},
		{
			name:       "before the first poll",
			disc:       fakeDiscovery{status: discovery.Status{Organizations: []string{"o1"}}},
			wantStatus: http.StatusOK,
			wantBody:   `{"organizations":["o1"],"lastListingAt":null,"nextPollAt":null,"discovered":0}` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, New(Options{Supervisor: newFake(), Discovery: tt.disc}), http.MethodGet, "/v1/discovery", "")
			if rec.Code != tt.wantStatus || rec.Body.String() != tt.wantBody {
				t.Errorf("got %d %s\nwant %d %s", rec.Code, rec.Body.String(), tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestReadyzDiscovery(t *testing.T) {
	tests := []struct {
		name       string
		ready      error
		wantStatus int
		wantBody   string
	}{
		{"transient failures do not count", nil, http.StatusOK, `{"status":"ready"}` + "\n"},
		{"permanent failure", errors.New("discovery: listing organization o1: token rejected (401)"), http.StatusServiceUnavailable,
			`{"status":"not ready","reason":"discovery: listing organization o1: token rejected (401)"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Options{Supervisor: newFake(), Discovery: fakeDiscovery{ready: tt.ready}})
			rec := serve(t, h, http.MethodGet, "/readyz", "")
			if rec.Code != tt.wantStatus || rec.Body.String() != tt.wantBody {
				t.Errorf("got %d %s\nwant %d %s", rec.Code, rec.Body.String(), tt.wantStatus, tt.wantBody)
			}
		})
	}
}
