package config

import (
	"math"
	"strconv"
	"testing"
)

// TestValidateCapacity checks the bounds on DATACORE_MAX_INFLIGHT,
// DATACORE_MAX_STREAMS, DATACORE_ACCESS_RATE and DATACORE_ACCESS_BURST.
func TestValidateCapacity(t *testing.T) {
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "f" + strconv.Itoa(i)
		}
		return out
	}
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantVar string // "" when valid
		wantMsg string
	}{
		{"defaults", func(c *Config) {}, "", ""},
		{"max inflight at its bound", func(c *Config) { c.MaxInflight = 65536 }, "", ""},
		{"max inflight past its bound", func(c *Config) { c.MaxInflight = 65537 }, "DATACORE_MAX_INFLIGHT", `must be at most 65536, got "65537"`},
		{"max inflight a billion", func(c *Config) { c.MaxInflight = 1_000_000_000 }, "DATACORE_MAX_INFLIGHT", "must be at most 65536"},
		{"max streams one", func(c *Config) { c.MaxStreams = 1 }, "", ""},
		{"max streams zero", func(c *Config) { c.MaxStreams = 0 }, "DATACORE_MAX_STREAMS", `must be from 1 to 100000, got "0"`},
		{"max streams past its bound", func(c *Config) { c.MaxStreams = 100001 }, "DATACORE_MAX_STREAMS", "must be from 1 to 100000"},
		{"env streams at the cap", func(c *Config) { c.MaxStreams, c.Fixtures, c.Venues = 3, ids(2), []string{"v"} }, "", ""},
		{"env streams past the cap", func(c *Config) { c.MaxStreams, c.Fixtures, c.Venues = 3, ids(3), []string{"v"} }, "DATACORE_MAX_STREAMS", "is 3 but DATACORE_FIXTURES and DATACORE_VENUES name 4 streams"},
		{"duplicates count once", func(c *Config) { c.MaxStreams, c.Fixtures = 1, []string{"f", " f"} }, "", ""},
		{"access rate fractional", func(c *Config) { c.AccessRate = 0.5 }, "", ""},
		{"access rate at its bound", func(c *Config) { c.AccessRate = 1000 }, "", ""},
		{"access rate zero", func(c *Config) { c.AccessRate = 0 }, "DATACORE_ACCESS_RATE", `above 0 and at most 1000, got "0"`},
		{"access rate negative", func(c *Config) { c.AccessRate = -1 }, "DATACORE_ACCESS_RATE", `got "-1"`},
		{"access rate past its bound", func(c *Config) { c.AccessRate = 1001 }, "DATACORE_ACCESS_RATE", "at most 1000"},
		{"access rate NaN", func(c *Config) { c.AccessRate = math.NaN() }, "DATACORE_ACCESS_RATE", `got "NaN"`},
		{"access rate infinite", func(c *Config) { c.AccessRate = math.Inf(1) }, "DATACORE_ACCESS_RATE", `got "+Inf"`},
		{"access burst one", func(c *Config) { c.AccessBurst = 1 }, "", ""},
		{"access burst zero", func(c *Config) { c.AccessBurst = 0 }, "DATACORE_ACCESS_BURST", `must be from 1 to 1000, got "0"`},
		{"access burst past its bound", func(c *Config) { c.AccessBurst = 1001 }, "DATACORE_ACCESS_BURST", "must be from 1 to 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(c)
			err := c.Validate()
			if tt.wantVar == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			checkError(t, err, tt.wantVar, tt.wantMsg)
		})
	}
}

// TestLoadCapacity reads the capacity variables from the environment.
func TestLoadCapacity(t *testing.T) {
	base := map[string]string{"DATACORE_CREDENTIAL_ID": "id", "DATACORE_CREDENTIAL_SECRET": "sec", "DATACORE_FIXTURES": "f1"}
	t.Run("defaults", func(t *testing.T) {
		clearEnv(t)
		setEnv(t, base)
		c, err := Load()
		if err != nil {
			t.Fatal(err)
		}
		if c.AccessRate != 5 || c.AccessBurst != 10 || c.MaxStreams != 1000 || c.MaxInflight != 1024 {
			t.Errorf("AccessRate %v AccessBurst %d MaxStreams %d MaxInflight %d, want 5 10 1000 1024", c.AccessRate, c.AccessBurst, c.MaxStreams, c.MaxInflight)
		}
	})
	t.Run("set", func(t *testing.T) {
		clearEnv(t)
		setEnv(t, base)
		setEnv(t, map[string]string{"DATACORE_ACCESS_RATE": "0.25", "DATACORE_ACCESS_BURST": "3", "DATACORE_MAX_STREAMS": "7"})
		c, err := Load()
		if err != nil {
			t.Fatal(err)
		}
		if c.AccessRate != 0.25 || c.AccessBurst != 3 || c.MaxStreams != 7 {
			t.Errorf("AccessRate %v AccessBurst %d MaxStreams %d", c.AccessRate, c.AccessBurst, c.MaxStreams)
		}
	})
	t.Run("rate not a number", func(t *testing.T) {
		clearEnv(t)
		setEnv(t, base)
		setEnv(t, map[string]string{"DATACORE_ACCESS_RATE": "fast"})
		_, err := Load()
		checkError(t, err, "DATACORE_ACCESS_RATE", `must be a number, got "fast"`)
	})
}
