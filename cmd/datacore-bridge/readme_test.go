package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datacore-bridge/datacore-bridge/config"
)

// The README's configuration table sits between these markers. The start
// marker's comment runs on after this prefix.
const (
	configTableStart = "<!-- config-table:start"
	configTableEnd   = "<!-- config-table:end -->"
)

// TestReadmeConfigTable checks that README.md's configuration table is the one
// config.Markdown generates from config.Config, so neither can change alone.
func TestReadmeConfigTable(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := readmeConfigTable(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	if err := config.Markdown(&want); err != nil {
		t.Fatalf("config.Markdown: %v", err)
	}
	if got != want.String() {
		t.Fatalf("README.md's configuration table differs from config.Markdown (line %d).\n"+
			"Replace the lines between %q and %q with:\n\n%s",
			firstDiffLine(got, want.String()), configTableStart+" …", configTableEnd, want.String())
	}
}

// readmeConfigTable returns the text between the line holding the start marker
// and the end marker.
func readmeConfigTable(readme string) (string, error) {
	_, after, ok := strings.Cut(readme, configTableStart)
	if !ok {
		return "", fmt.Errorf("README.md has no %q marker line", configTableStart)
	}
	_, after, ok = strings.Cut(after, "\n") // the rest of the marker's line
	if !ok {
		return "", fmt.Errorf("README.md has no %q marker line", configTableStart)
	}
	table, _, ok := strings.Cut(after, configTableEnd)
	if !ok {
		return "", fmt.Errorf("README.md has no %q marker", configTableEnd)
	}
	return table, nil
}

// firstDiffLine is the 1-based number of the first line where a and b differ.
func firstDiffLine(a, b string) int {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return i + 1
		}
	}
	return min(len(al), len(bl)) + 1
}

func TestReadmeConfigTableMarkers(t *testing.T) {
	tests := []struct {
		name    string
		readme  string
		want    string
		wantErr bool
	}{
		{
			name:   "table between markers",
			readme: "intro\n<!-- config-table:start (generated) -->\n| a |\n|---|\n<!-- config-table:end -->\nrest\n",
			want:   "| a |\n|---|\n",
		},
		{
			name:   "empty table",
			readme: "<!-- config-table:start -->\n<!-- config-table:end -->",
			want:   "",
		},
		{
			name:    "no start marker",
			readme:  "| a |\n<!-- config-table:end -->\n",
			wantErr: true,
		},
		{
			name:    "no end marker",
			readme:  "<!-- config-table:start -->\n| a |\n",
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readmeConfigTable(tt.readme)
			if tt.wantErr != (err != nil) {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("table = %q, want %q", got, tt.want)
			}
		})
	}
}
