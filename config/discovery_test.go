package config

import (
	"slices"
	"testing"
	"time"

	"github.com/datacore-bridge/datacore-bridge/access"
)

func TestDiscoveryConfigErrors(t *testing.T) {
	base := map[string]string{"DATACORE_CREDENTIAL_ID": "id", "DATACORE_CREDENTIAL_SECRET": "sec", "DATACORE_ORGANIZATIONS": "org1"}
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
		wantMsg string
	}{
		{"stray comma", map[string]string{"DATACORE_ORGANIZATIONS": "org1,,org2"}, "DATACORE_ORGANIZATIONS", "empty ID at position 2"},
		{"slash", map[string]string{"DATACORE_ORGANIZATIONS": "org1,a/b"}, "DATACORE_ORGANIZATIONS", "ID at position 2"},
		{"dot dot", map[string]string{"DATACORE_ORGANIZATIONS": ".."}, "DATACORE_ORGANIZATIONS", "not a URL path segment"},
		{"query", map[string]string{"DATACORE_ORGANIZATIONS": "a?b"}, "DATACORE_ORGANIZATIONS", "not a URL path segment"},
		{"rest url not a url", map[string]string{"DATACORE_REST_URL": "api.example"}, "DATACORE_REST_URL", "absolute http or https URL"},
		{"rest url with password", map[string]string{"DATACORE_REST_URL": "https://u:pw@api.example/v1"}, "DATACORE_REST_URL", "user information"},
		{"interval too short", map[string]string{"DATACORE_DISCOVER_INTERVAL": "500ms"}, "DATACORE_DISCOVER_INTERVAL", "at least 1s"},
		{"interval not a duration", map[string]string{"DATACORE_DISCOVER_INTERVAL": "60"}, "DATACORE_DISCOVER_INTERVAL", "must be a duration"},
		{"ahead zero", map[string]string{"DATACORE_DISCOVER_AHEAD": "0s"}, "DATACORE_DISCOVER_AHEAD", "must be positive"},
		{"ahead negative", map[string]string{"DATACORE_DISCOVER_AHEAD": "-5m"}, "DATACORE_DISCOVER_AHEAD", "must be positive"},
		{"venues not a bool", map[string]string{"DATACORE_DISCOVER_VENUES": "yes please"}, "DATACORE_DISCOVER_VENUES", "true or false"},
		{"nothing to follow names organizations", map[string]string{"DATACORE_ORGANIZATIONS": ""}, "DATACORE_FIXTURES", "DATACORE_ORGANIZATIONS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			setEnv(t, base)
			setEnv(t, tt.env)
			c, err := Load()
			if c != nil {
				t.Errorf("Load returned a config with an error")
			}
			checkError(t, err, tt.wantVar, tt.wantMsg)
		})
	}
}

func TestDiscoveryConfig(t *testing.T) {
	tests := []struct {
		name         string
		env          map[string]string
		wantOrgs     []string
		wantURL      string
		wantInterval time.Duration
		wantAhead    time.Duration
		wantVenues   bool
	}{
		{
			name:     "organizations alone start, defaults",
			env:      map[string]string{"DATACORE_ORGANIZATIONS": " org1 ,org2,org1"},
			wantOrgs: []string{"org1", "org2"}, wantURL: access.ProductionRESTURL,
			wantInterval: time.Minute, wantAhead: 30 * time.Minute,
		},
		{
			name:     "nonprod",
			env:      map[string]string{"DATACORE_ORGANIZATIONS": "o", "DATACORE_ENV": "nonprod"},
			wantOrgs: []string{"o"}, wantURL: access.NonprodRESTURL, wantInterval: time.Minute, wantAhead: 30 * time.Minute,
		},
		{
			name:     "sandpit",
			env:      map[string]string{"DATACORE_ORGANIZATIONS": "o", "DATACORE_ENV": "sandpit"},
			wantOrgs: []string{"o"}, wantURL: access.SandpitRESTURL, wantInterval: time.Minute, wantAhead: 30 * time.Minute,
		},
		{
			name: "set",
			env: map[string]string{"DATACORE_ORGANIZATIONS": "o", "DATACORE_REST_URL": "http://127.0.0.1:9/v1/",
				"DATACORE_DISCOVER_INTERVAL": "1s", "DATACORE_DISCOVER_AHEAD": "2h", "DATACORE_DISCOVER_VENUES": "true"},
			wantOrgs: []string{"o"}, wantURL: "http://127.0.0.1:9/v1", wantInterval: time.Second, wantAhead: 2 * time.Hour, wantVenues: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			setEnv(t, map[string]string{"DATACORE_CREDENTIAL_ID": "id", "DATACORE_CREDENTIAL_SECRET": "sec"})
			setEnv(t, tt.env)
			c, err := Load()
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !slices.Equal(c.Organizations, tt.wantOrgs) || c.RESTURL != tt.wantURL || c.DiscoverInterval != tt.wantInterval ||
				c.DiscoverAhead != tt.wantAhead || c.DiscoverVenues != tt.wantVenues {
				t.Errorf("got orgs %q url %q interval %v ahead %v venues %v", c.Organizations, c.RESTURL, c.DiscoverInterval, c.DiscoverAhead, c.DiscoverVenues)
			}
		})
	}
}
