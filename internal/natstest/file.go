package natstest

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteFile writes data to a file called name in a new temporary directory
// of t, readable by the owner only, and returns its path.
func WriteFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
