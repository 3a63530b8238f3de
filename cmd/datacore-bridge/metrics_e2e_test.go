package main

import (
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// TestMetricsMatchTheREADME checks that /metrics exports every metric the
// README's Metrics table lists, with the labels it names, once messages flow.
func TestMetricsMatchTheREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	if i := strings.Index(section, "\n## Metrics\n"); i >= 0 {
		section = section[i:]
	}
	if i := strings.Index(section[1:], "\n## "); i >= 0 {
		section = section[:i+1]
	}
	rows := regexp.MustCompile("(?m)^\\| `([a-z_]+)`(?:, `([a-z_]+)`)? \\| *([a-z_, ]*?) *\\|").FindAllStringSubmatch(section, -1)
	if len(rows) < 15 {
		t.Fatalf("found %d metric rows in the README's Metrics section", len(rows))
	}

	e := newEnv(t, envOptions{
		sim:       sim.Options{Fixtures: []string{"sr:match:90"}, Feed: sim.Feed{Rate: 50}},
		configure: func(c *config.Config) { c.Fixtures = []string{"sr:match:90"} },
	})
	c := e.collect()
	subject := e.subjectOf("fixture", "sr:match:90", sim.ScopeEvents)
	poll.Wait(t, 10*time.Second, "messages", func() bool { return c.count(subject) > 0 })
	code, body := e.do(http.MethodGet, "/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, row := range rows {
		labels := strings.Fields(strings.ReplaceAll(row[3], ",", " "))
		for _, name := range row[1:3] {
			if name == "" {
				continue
			}
			full := "datacore_" + name
			if strings.HasSuffix(name, "_seconds") { // histograms
				full += "_bucket"
			}
			line := regexp.MustCompile(`(?m)^` + full + `(\{[^}]*\})? `).FindString(body)
			if line == "" {
				t.Errorf("%s is in the README but not in /metrics", full)
				continue
			}
			for _, l := range labels {
				if !strings.Contains(line, l+"=") {
					t.Errorf("%s has no label %s: %s", full, l, line)
				}
			}
		}
	}
	for _, secret := range []string{testCredSecret, testAdminToken, "sr:match:90"} {
		if strings.Contains(body, secret) {
			t.Errorf("/metrics contains %q", secret)
		}
	}
}
