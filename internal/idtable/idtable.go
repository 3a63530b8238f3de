// Package idtable loads the table of fixture and venue IDs shared by the tests
// of fixtures (ValidateID), config (DATACORE_FIXTURES) and httpapi (PUT
// /v1/fixtures/{id}), so that the three places an ID enters the bridge are
// tested against the same cases and cannot disagree. The table is
// fixtures/testdata/ids.json.
package idtable

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Case is one ID and whether it is valid.
type Case struct {
	// Name names the case for t.Run.
	Name string
	// ID is the ID, byte for byte.
	ID string
	// Valid is whether fixtures.ValidateID and the admin API accept ID.
	Valid bool
	// EnvValid is whether DATACORE_FIXTURES=ID is accepted: the variable's
	// entries are trimmed, so it differs from Valid for surrounding whitespace.
	EnvValid bool
}

// Load reads the table, failing t if it cannot.
func Load(t testing.TB) []Case {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("idtable: cannot locate the table")
	}
	path := filepath.Join(filepath.Dir(file), "..", "..", "fixtures", "testdata", "ids.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("idtable: %v", err)
	}
	var table struct {
		IDs []struct {
			Name     string `json:"name"`
			ID       string `json:"id"`
			Hex      string `json:"hex"`
			Repeat   int    `json:"repeat"`
			Valid    bool   `json:"valid"`
			EnvValid *bool  `json:"env_valid"`
		} `json:"ids"`
	}
	if err := json.Unmarshal(data, &table); err != nil {
		t.Fatalf("idtable: %s: %v", path, err)
	}
	out := make([]Case, 0, len(table.IDs))
	for _, c := range table.IDs {
		id := c.ID
		if c.Hex != "" {
			b, err := hex.DecodeString(c.Hex)
			if err != nil {
				t.Fatalf("idtable: case %q: %v", c.Name, err)
			}
			id = string(b)
		}
		if c.Repeat > 0 {
			id = strings.Repeat(id, c.Repeat)
		}
		envValid := c.Valid
		if c.EnvValid != nil {
			envValid = *c.EnvValid
		}
		out = append(out, Case{Name: c.Name, ID: id, Valid: c.Valid, EnvValid: envValid})
	}
	if len(out) == 0 {
		t.Fatal("idtable: the table is empty")
	}
	return out
}
