package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLibrariesKnowNoVariables checks that no library package names an
// environment variable: their errors and hints name their own options, and
// config (or the composition root) adds the variable's name. A rule that
// names a variable in a library is a copy of config's knowledge that drifts.
func TestLibrariesKnowNoVariables(t *testing.T) {
	libraries := []string{"access", "sink", "fixtures", "mqttclient", "httpapi", "metrics", "sim", "discovery", "cluster"}
	for _, lib := range libraries {
		t.Run(lib, func(t *testing.T) {
			dir := filepath.Join("..", lib)
			files, err := filepath.Glob(filepath.Join(dir, "*.go"))
			if err != nil {
				t.Fatal(err)
			}
			scanned := 0
			for _, f := range files {
				if strings.HasSuffix(f, "_test.go") {
					continue
				}
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				scanned++
				for i, line := range strings.Split(string(b), "\n") {
					if strings.Contains(line, Prefix+"_") {
						t.Errorf("%s:%d names an environment variable: %s", f, i+1, strings.TrimSpace(line))
					}
				}
			}
			if scanned == 0 {
				t.Fatalf("no Go source found in %s", dir)
			}
		})
	}
}
