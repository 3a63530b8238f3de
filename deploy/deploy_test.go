package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/internal/testbed"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

const (
	dashboardFile   = "grafana/datacore-bridge.json"
	alertsFile      = "prometheus/alerts.yaml"
	composeFile     = "compose.yaml"
	kubernetesDir   = "kubernetes"
	troubleshooting = "../docs/troubleshooting.md"
	runbookPrefix   = "https://github.com/datacore-bridge/datacore-bridge/blob/main/docs/troubleshooting.md#"
)

// scrapeBridge runs the emulator, NATS and a bridge following one fixture,
// waits for messages to be published, and returns what the bridge's /metrics
// serves: each series name with its labels and their values. Histograms and
// summaries appear as their _bucket, _sum and _count series (and a summary
// under its own name, with quantile). Prometheus's own up series is added.
func scrapeBridge(t *testing.T) map[string]family {
	t.Helper()
	const fixture = "sr:match:130"
	bed, err := testbed.Start(t.Context(), testbed.Options{
		Sim:       sim.Options{Fixtures: []string{fixture}, Feed: sim.Feed{Rate: 50}},
		Configure: func(c *config.Config) { c.Fixtures = []string{fixture} },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bed.Close() })
	poll.Wait(t, 10*time.Second, "a published message", func() bool { return bed.Bridge.Published() > 0 })

	resp, err := http.Get("http://" + bed.Bridge.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics answered %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	fams := map[string]family{"up": {labels: map[string]map[string]bool{}}}
	add := func(name string, m *dto.Metric, extra string) {
		f, ok := fams[name]
		if !ok {
			f = family{labels: map[string]map[string]bool{}}
			fams[name] = f
		}
		for _, lp := range m.GetLabel() {
			if f.labels[lp.GetName()] == nil {
				f.labels[lp.GetName()] = map[string]bool{}
			}
			f.labels[lp.GetName()][lp.GetValue()] = true
		}
		if extra != "" && f.labels[extra] == nil {
			f.labels[extra] = map[string]bool{}
		}
	}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_HISTOGRAM:
				add(name+"_bucket", m, "le")
				add(name+"_sum", m, "")
				add(name+"_count", m, "")
			case dto.MetricType_SUMMARY:
				add(name, m, "quantile")
				add(name+"_sum", m, "")
				add(name+"_count", m, "")
			default:
				add(name, m, "")
			}
		}
	}
	return fams
}

// baseName is the family a series name belongs to: a histogram's _bucket,
// _sum and _count series belong to the histogram.
func baseName(fams map[string]family, name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if _, isHist := fams[base+"_bucket"]; isHist {
				return base
			}
		}
	}
	return name
}

// query is one PromQL expression of a deploy file, with where it is.
type query struct {
	where, expr, legend string
}

// TestDeployFilesUseExistingMetrics parses the dashboard and the alert rules
// and checks every metric name, label name, label value, grouping label and
// legend label they use against the /metrics of a running bridge; and that the
// dashboard shows every datacore_ metric the bridge exports.
func TestDeployFilesUseExistingMetrics(t *testing.T) {
	fams := scrapeBridge(t)
	if _, ok := fams["datacore_messages_published_total"]; !ok {
		t.Fatalf("/metrics has no datacore_messages_published_total after a publish: %v", slices.Sorted(mapKeys(fams)))
	}

	dashboardQueries := dashboardQueries(t, loadDashboard(t))
	ruleQueries := ruleQueries(loadRules(t))
	for _, tc := range []struct {
		name    string
		queries []query
		min     int
	}{
		{name: "dashboard", queries: dashboardQueries, min: 40},
		{name: "alerts", queries: ruleQueries, min: 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.queries) < tc.min {
				t.Fatalf("found %d queries, want at least %d", len(tc.queries), tc.min)
			}
			for _, q := range tc.queries {
				for _, err := range checkExpr(fams, q.expr, q.legend) {
					t.Errorf("%s: %v", q.where, err)
				}
			}
		})
	}

	t.Run("dashboard shows every datacore metric", func(t *testing.T) {
		shown := map[string]bool{}
		for _, q := range dashboardQueries {
			refs, err := parsePromQL(q.expr)
			if err != nil {
				continue // reported above
			}
			for _, s := range refs.selectors {
				shown[baseName(fams, s.metric)] = true
			}
		}
		for name := range fams {
			if base := baseName(fams, name); strings.HasPrefix(base, "datacore_") && !shown[base] {
				t.Errorf("the dashboard does not show %s", base)
			}
		}
	})
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestCheckExpr checks the PromQL reader on the cases the deploy files rely on,
// and that a name, label or value that does not exist is reported.
func TestCheckExpr(t *testing.T) {
	fams := map[string]family{
		"up": {labels: map[string]map[string]bool{}},
		"datacore_messages_dropped_total": {labels: map[string]map[string]bool{
			"reason": {"too_large": true, "shutdown": true}}},
		"datacore_messages_received_total": {labels: map[string]map[string]bool{
			"stream_kind": {"fixture": true}, "kind": {"events": true}}},
		"datacore_publish_latency_seconds_bucket": {labels: map[string]map[string]bool{"le": {}}},
		"datacore_publish_latency_seconds_count":  {labels: map[string]map[string]bool{}},
	}
	for _, tc := range []struct {
		name, expr, legend string
		wantErr            []string // substrings, one per error, in order
	}{
		{name: "rate by label", expr: `sum by (reason) (rate(datacore_messages_dropped_total{instance=~"$instance"}[$__rate_interval]))`, legend: "{{reason}}"},
		{name: "histogram", expr: `histogram_quantile(0.99, sum by (le) (rate(datacore_publish_latency_seconds_bucket[5m])))`},
		{name: "histogram count", expr: `rate(datacore_publish_latency_seconds_count[5m])`},
		{name: "unless and up", expr: "up{job=\"datacore-bridge\"} == 0\nunless on (job) sum by (job) (rate(datacore_messages_received_total[5m])) > 0"},
		{name: "regexp of values", expr: `datacore_messages_dropped_total{reason=~"too_large|shutdown"}`},
		{name: "bogus metric", expr: `rate(datacore_bogus_total[5m])`, wantErr: []string{"metric datacore_bogus_total does not exist"}},
		{name: "histogram without suffix", expr: `rate(datacore_publish_latency_seconds[5m])`, wantErr: []string{"metric datacore_publish_latency_seconds does not exist"}},
		{name: "bogus label", expr: `datacore_messages_dropped_total{outcome="ok"}`, wantErr: []string{"has no label outcome"}},
		{name: "bogus value", expr: `datacore_messages_dropped_total{reason="too_big"}`, wantErr: []string{`no series with reason="too_big"`}},
		{name: "bogus value in a regexp", expr: `datacore_messages_dropped_total{reason=~"too_large|nope"}`, wantErr: []string{`reason="nope"`}},
		{name: "bogus grouping label", expr: `sum by (outcome) (datacore_messages_dropped_total)`, wantErr: []string{"label outcome of a by/on clause"}},
		{name: "bogus legend label", expr: `datacore_messages_dropped_total`, legend: "{{kind}}", wantErr: []string{"names label kind"}},
		{name: "bogus function", expr: `rates(datacore_messages_dropped_total[5m])`, wantErr: []string{"unknown function rates"}},
		{name: "no metric", expr: `vector(1)`, wantErr: []string{"no metric"}},
		{name: "unterminated string", expr: `datacore_messages_dropped_total{reason="x}`, wantErr: []string{"unterminated"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := checkExpr(fams, tc.expr, tc.legend)
			if len(errs) != len(tc.wantErr) {
				t.Fatalf("checkExpr = %v, want %d errors %q", errs, len(tc.wantErr), tc.wantErr)
			}
			for i, err := range errs {
				if !strings.Contains(err.Error(), tc.wantErr[i]) {
					t.Errorf("error %d = %v, want it to contain %q", i, err, tc.wantErr[i])
				}
			}
		})
	}
}

// loadDashboard reads the dashboard JSON.
func loadDashboard(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// panelsOf returns the dashboard's panels, those of collapsed rows included.
func panelsOf(d map[string]any) []map[string]any {
	var out []map[string]any
	var walk func(v any)
	walk = func(v any) {
		list, _ := v.([]any)
		for _, p := range list {
			pm, ok := p.(map[string]any)
			if !ok {
				continue
			}
			out = append(out, pm)
			walk(pm["panels"])
		}
	}
	walk(d["panels"])
	return out
}

// labelValuesQuery is a Grafana query variable over label values.
var labelValuesQuery = regexp.MustCompile(`^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$`)

// dashboardQueries returns every PromQL expression of the dashboard: panel
// targets and the selectors of label_values variables.
func dashboardQueries(t *testing.T, d map[string]any) []query {
	t.Helper()
	var qs []query
	for _, p := range panelsOf(d) {
		targets, _ := p["targets"].([]any)
		for i, tv := range targets {
			tm, _ := tv.(map[string]any)
			expr, _ := tm["expr"].(string)
			legend, _ := tm["legendFormat"].(string)
			qs = append(qs, query{where: fmt.Sprintf("panel %q target %d", p["title"], i), expr: expr, legend: legend})
		}
	}
	templating, _ := d["templating"].(map[string]any)
	vars, _ := templating["list"].([]any)
	for _, v := range vars {
		vm, _ := v.(map[string]any)
		if vm["type"] != "query" {
			continue
		}
		q, _ := vm["query"].(map[string]any)
		text, _ := q["query"].(string)
		m := labelValuesQuery.FindStringSubmatch(text)
		if m == nil {
			t.Errorf("variable %v: query %q is not label_values(selector, label)", vm["name"], text)
			continue
		}
		qs = append(qs, query{where: fmt.Sprintf("variable %v", vm["name"]), expr: m[1], legend: "{{" + m[2] + "}}"})
	}
	return qs
}

// TestDashboardStructure checks what Grafana needs to import the dashboard and
// what makes it usable: a datasource and an instance variable that every panel
// uses, unique panel ids, a layout on the 24-column grid, and a query per panel.
func TestDashboardStructure(t *testing.T) {
	d := loadDashboard(t)
	if v, _ := d["schemaVersion"].(float64); v < 39 {
		t.Errorf("schemaVersion = %v, want at least 39 (Grafana 11)", d["schemaVersion"])
	}
	for _, key := range []string{"uid", "title"} {
		if s, _ := d[key].(string); s == "" {
			t.Errorf("the dashboard has no %s", key)
		}
	}
	templating, _ := d["templating"].(map[string]any)
	vars, _ := templating["list"].([]any)
	byName := map[string]map[string]any{}
	for _, v := range vars {
		vm, _ := v.(map[string]any)
		name, _ := vm["name"].(string)
		byName[name] = vm
	}
	if ds := byName["datasource"]; ds == nil || ds["type"] != "datasource" || ds["query"] != "prometheus" {
		t.Errorf("variable datasource = %v, want type datasource over prometheus", ds)
	}
	if in := byName["instance"]; in == nil || in["type"] != "query" || in["includeAll"] != true || in["multi"] != true {
		t.Errorf("variable instance = %v, want a multi-value query variable with All", in)
	}

	ids := map[float64]string{}
	panels := panelsOf(d)
	for _, p := range panels {
		title, _ := p["title"].(string)
		id, _ := p["id"].(float64)
		if other, dup := ids[id]; dup || id == 0 {
			t.Errorf("panel %q: id %v missing or also used by %q", title, p["id"], other)
		}
		ids[id] = title
		grid, _ := p["gridPos"].(map[string]any)
		w, _ := grid["w"].(float64)
		h, _ := grid["h"].(float64)
		x, _ := grid["x"].(float64)
		if w <= 0 || h <= 0 || x < 0 || x+w > 24 {
			t.Errorf("panel %q: gridPos %v is not on the 24-column grid", title, grid)
		}
		if p["type"] == "row" {
			continue
		}
		if title == "" {
			t.Errorf("panel %v has no title", p["id"])
		}
		if ds, _ := p["datasource"].(map[string]any); ds["uid"] != "${datasource}" {
			t.Errorf("panel %q: datasource %v, want uid ${datasource}", title, p["datasource"])
		}
		targets, _ := p["targets"].([]any)
		if len(targets) == 0 {
			t.Errorf("panel %q has no query", title)
		}
		for _, tv := range targets {
			tm, _ := tv.(map[string]any)
			expr, _ := tm["expr"].(string)
			if ref, _ := tm["refId"].(string); ref == "" || expr == "" {
				t.Errorf("panel %q: a target without refId or expr: %v", title, tm)
			}
			if !strings.Contains(expr, `instance=~"$instance"`) {
				t.Errorf("panel %q: %q does not select instance=~\"$instance\"", title, expr)
			}
		}
	}
	if len(panels) < 30 {
		t.Errorf("the dashboard has %d panels", len(panels))
	}
}

// ruleFile is a Prometheus rule file (the rulefmt layout).
type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []rule `yaml:"rules"`
}

type rule struct {
	Alert         string            `yaml:"alert,omitempty"`
	Record        string            `yaml:"record,omitempty"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for,omitempty"`
	KeepFiringFor string            `yaml:"keep_firing_for,omitempty"`
	Labels        map[string]string `yaml:"labels,omitempty"`
	Annotations   map[string]string `yaml:"annotations,omitempty"`
}

// loadRules reads the alert rules, refusing fields Prometheus does not know.
func loadRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	return rf
}

func ruleQueries(rf ruleFile) []query {
	var qs []query
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{where: "rule " + r.Alert + r.Record, expr: r.Expr})
		}
	}
	return qs
}

// alertName is what Prometheus accepts as an alert or record name.
var alertName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// TestAlertRules checks the rule file as Prometheus loads it (the rulefmt
// rules: unique group names, alert or record, a parsable for, templates that
// parse) and what the project asks of every alert: a severity, a summary, a
// description and a runbook_url pointing at a section of troubleshooting.md;
// and that every alert the issue names is there.
func TestAlertRules(t *testing.T) {
	rf := loadRules(t)
	anchors := markdownAnchors(t, troubleshooting)
	groups := map[string]bool{}
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || groups[g.Name] {
			t.Errorf("group name %q empty or repeated", g.Name)
		}
		groups[g.Name] = true
		if len(g.Rules) == 0 {
			t.Errorf("group %s has no rule", g.Name)
		}
		for _, r := range g.Rules {
			name := r.Alert
			if r.Alert == "" || r.Record != "" || !alertName.MatchString(r.Alert) || alerts[r.Alert] {
				t.Errorf("group %s: rule alert %q record %q: want one alert with a unique valid name", g.Name, r.Alert, r.Record)
			}
			alerts[name] = true
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: no expr", name)
			}
			if d, err := model.ParseDuration(r.For); err != nil || d <= 0 {
				t.Errorf("%s: for %q: want a positive duration (%v)", name, r.For, err)
			}
			switch r.Labels["severity"] {
			case "critical", "warning":
			default:
				t.Errorf("%s: severity %q, want critical or warning", name, r.Labels["severity"])
			}
			for _, key := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[key] == "" {
					t.Errorf("%s: no %s annotation", name, key)
				}
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookPrefix)
			if !ok || !anchors[anchor] {
				t.Errorf("%s: runbook_url %q is not %s<a heading of docs/troubleshooting.md>", name, r.Annotations["runbook_url"], runbookPrefix)
			}
			for key, text := range r.Annotations {
				if err := checkAlertTemplate(text); err != nil {
					t.Errorf("%s: annotation %s: %v", name, key, err)
				}
			}
		}
	}
	for _, want := range []string{
		"DatacoreBridgeDown", "DatacoreBridgeNATSDisconnected", "DatacoreBridgeStreamFailed",
		"DatacoreBridgeStreamReconnecting", "DatacoreBridgeNotPublishing", "DatacoreBridgeDropping",
		"DatacoreBridgePublishRetries", "DatacoreBridgeAccessFailing", "DatacoreBridgeDiscoveryFailing",
		"DatacoreClusterMemberMissing", "DatacoreClusterLeaseChurn",
	} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}
}

// checkAlertTemplate parses and runs text the way Prometheus expands alert
// annotations: with $labels, $value and its humanize functions.
func checkAlertTemplate(text string) error {
	funcs := template.FuncMap{}
	for _, f := range []string{"humanize", "humanize1024", "humanizeDuration", "humanizePercentage", "humanizeTimestamp"} {
		funcs[f] = func(v any) string { return fmt.Sprint(v) }
	}
	tmpl, err := template.New("annotation").Funcs(funcs).Option("missingkey=zero").Parse(
		"{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$value := .Value}}" + text)
	if err != nil {
		return err
	}
	data := struct {
		Labels, ExternalLabels map[string]string
		Value                  float64
	}{Labels: map[string]string{}, ExternalLabels: map[string]string{}, Value: 1}
	return tmpl.Execute(io.Discard, data)
}

// markdownAnchors returns the GitHub anchors of the headings of a Markdown file.
func markdownAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	inCode := false
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		if inCode || !strings.HasPrefix(line, "#") {
			continue
		}
		anchors[githubAnchor(strings.TrimLeft(strings.TrimSpace(line), "# "))] = true
	}
	return anchors
}

// githubAnchor is the anchor GitHub gives a heading: lower case, punctuation
// but - and _ removed, spaces as -.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// markdownLink is a link of a Markdown file: [text](target).
var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocLinks checks that the links of the documents that point at the
// deploy files and at troubleshooting sections resolve: the files exist and
// the anchors are headings.
func TestDocLinks(t *testing.T) {
	for _, doc := range []string{"../README.md", "../docs/deployment.md", "../docs/troubleshooting.md"} {
		t.Run(filepath.Base(doc), func(t *testing.T) {
			b, err := os.ReadFile(doc)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range markdownLink.FindAllStringSubmatch(string(b), -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				file, anchor, _ := strings.Cut(target, "#")
				path := doc
				if file != "" {
					path = filepath.Join(filepath.Dir(doc), file)
					if _, err := os.Stat(path); err != nil {
						t.Errorf("link %s: %v", target, err)
						continue
					}
				}
				if anchor != "" && strings.HasSuffix(path, ".md") && !markdownAnchors(t, path)[anchor] {
					t.Errorf("link %s: %s has no heading with that anchor", target, path)
				}
			}
		})
	}
}

// TestAlertUnitTests checks that prometheus/alerts_test.yaml, the rules' unit
// tests for promtool test rules, loads alerts.yaml and tests alerts it has.
func TestAlertUnitTests(t *testing.T) {
	b, err := os.ReadFile("prometheus/alerts_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			Name          string `yaml:"name"`
			AlertRuleTest []struct {
				AlertName string `yaml:"alertname"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatalf("alerts_test.yaml: %v", err)
	}
	if !slices.Equal(file.RuleFiles, []string{filepath.Base(alertsFile)}) {
		t.Errorf("alerts_test.yaml loads %v, want [alerts.yaml]", file.RuleFiles)
	}
	alerts := map[string]bool{}
	for _, q := range ruleQueries(loadRules(t)) {
		alerts[strings.TrimPrefix(q.where, "rule ")] = true
	}
	tested := 0
	for _, tc := range file.Tests {
		for _, a := range tc.AlertRuleTest {
			if !alerts[a.AlertName] {
				t.Errorf("test %q: no alert %s in %s", tc.Name, a.AlertName, alertsFile)
			}
			tested++
		}
	}
	if tested < 5 {
		t.Errorf("alerts_test.yaml checks %d alerts", tested)
	}
}
