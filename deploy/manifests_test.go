package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/datacore-bridge/datacore-bridge/config"
)

// yamlDocuments decodes every document of a YAML file.
func yamlDocuments(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	return docs
}

// get walks nested maps and lists: get(v, "spec", "template", 0).
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// knownVariables are the DATACORE_ variables config documents.
func knownVariables(t *testing.T) map[string]bool {
	t.Helper()
	var b bytes.Buffer
	if err := config.Markdown(&b); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\| (DATACORE_[A-Z0-9_]+) \|`).FindAllStringSubmatch(b.String(), -1) {
		known[m[1]] = true
	}
	if len(known) < 30 {
		t.Fatalf("found %d variables in config.Markdown", len(known))
	}
	return known
}

// TestCompose checks that deploy/compose.yaml parses and hangs together: the
// services it depends on exist, what it builds from and mounts is in the
// repository, the bridge talks to the emulator and to NATS with JetStream, its
// variables exist, and its stop grace period covers the shutdown timeout.
func TestCompose(t *testing.T) {
	docs := yamlDocuments(t, composeFile)
	if len(docs) != 1 {
		t.Fatalf("%s holds %d documents", composeFile, len(docs))
	}
	c := docs[0]
	services, _ := c["services"].(map[string]any)
	for _, want := range []string{"nats", "emulator", "bridge"} {
		if services[want] == nil {
			t.Errorf("no service %s", want)
		}
	}
	known := knownVariables(t)
	for name, sv := range services {
		s, _ := sv.(map[string]any)
		if s["image"] == nil && s["build"] == nil {
			t.Errorf("service %s has neither image nor build", name)
		}
		if b, ok := s["build"].(map[string]any); ok {
			ctx, _ := b["context"].(string)
			df, _ := b["dockerfile"].(string)
			if df == "" {
				df = "Dockerfile"
			}
			if _, err := os.Stat(filepath.Join(ctx, df)); err != nil {
				t.Errorf("service %s builds from %v", name, err)
			}
		}
		var deps []string
		switch d := s["depends_on"].(type) {
		case map[string]any:
			deps = slices.Collect(mapKeys(d))
		case []any:
			for _, v := range d {
				deps = append(deps, fmt.Sprint(v))
			}
		}
		for _, dep := range deps {
			if services[dep] == nil {
				t.Errorf("service %s depends on %s, which does not exist", name, dep)
			}
		}
		declared, _ := c["volumes"].(map[string]any)
		vols, _ := s["volumes"].([]any)
		for _, v := range vols {
			src, _, _ := strings.Cut(fmt.Sprint(v), ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("service %s mounts %v", name, err)
				}
			} else if _, ok := declared[src]; !ok {
				t.Errorf("service %s mounts volume %s, which is not declared", name, src)
			}
		}
		env, _ := s["environment"].(map[string]any)
		for k := range env {
			if strings.HasPrefix(k, "DATACORE_") && !known[k] {
				t.Errorf("service %s sets %s, which is no variable of the bridge", name, k)
			}
		}
	}
	bridge, _ := services["bridge"].(map[string]any)
	env, _ := bridge["environment"].(map[string]any)
	for k, want := range map[string]string{
		"DATACORE_API_URL":   "http://emulator:8089/v1",
		"DATACORE_NATS_URL":  "nats://nats:4222",
		"DATACORE_JETSTREAM": "true",
	} {
		if got := fmt.Sprint(env[k]); got != want {
			t.Errorf("bridge %s = %q, want %q", k, got, want)
		}
	}
	emulator, _ := services["emulator"].(map[string]any)
	cmd := fmt.Sprint(emulator["command"])
	for _, want := range []string{"0.0.0.0:8089", fmt.Sprint(env["DATACORE_CREDENTIAL_ID"]), fmt.Sprint(env["DATACORE_CREDENTIAL_SECRET"])} {
		if !strings.Contains(cmd, want) {
			t.Errorf("emulator command %s does not contain %q (what the bridge is given)", cmd, want)
		}
	}
	if nats := fmt.Sprint(get(services, "nats", "command")); !strings.Contains(nats, "--jetstream") {
		t.Errorf("nats command %s does not enable JetStream", nats)
	}
	if sub := fmt.Sprint(get(services, "subscriber", "command")); !strings.Contains(sub, "datacore.>") {
		t.Errorf("subscriber command %s does not subscribe to datacore.>", sub)
	}
	grace, err := time.ParseDuration(fmt.Sprint(bridge["stop_grace_period"]))
	if err != nil || grace < 10*time.Second+5*time.Second {
		t.Errorf("bridge stop_grace_period %v (%v): want the shutdown timeout (10s) plus a margin", bridge["stop_grace_period"], err)
	}
}

// TestKubernetesManifests checks that every file of deploy/kubernetes parses
// as Kubernetes objects, that kustomization.yaml lists them all, and the
// settings cluster mode needs: 3 replicas, probes on /healthz and /readyz, the
// instance name from the pod name, a grace period of the shutdown timeout
// plus 10 s, a PodDisruptionBudget and a Service selecting the pods, and the
// Secret and ConfigMap the pods refer to.
func TestKubernetesManifests(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(kubernetesDir, "*.yaml"))
	if err != nil || len(files) < 5 {
		t.Fatalf("deploy/kubernetes holds %v (%v)", files, err)
	}
	monitoring, err := filepath.Glob(filepath.Join(kubernetesDir, "monitoring", "*.yaml"))
	if err != nil || len(monitoring) == 0 {
		t.Fatalf("deploy/kubernetes/monitoring holds %v (%v)", monitoring, err)
	}
	objects := map[string]map[string]any{} // kind/name
	var listed []string
	for _, f := range append(slices.Clone(files), monitoring...) {
		for _, d := range yamlDocuments(t, f) {
			if filepath.Base(f) == "kustomization.yaml" {
				for _, r := range get(d, "resources").([]any) {
					listed = append(listed, fmt.Sprint(r))
				}
				continue
			}
			kind, _ := d["kind"].(string)
			name, _ := get(d, "metadata", "name").(string)
			if d["apiVersion"] == nil || kind == "" || name == "" {
				t.Errorf("%s: an object without apiVersion, kind or metadata.name", f)
			}
			objects[kind+"/"+name] = d
		}
	}
	var want []string
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" {
			want = append(want, base)
		}
	}
	sort.Strings(listed)
	if !slices.Equal(listed, want) {
		t.Errorf("kustomization.yaml lists %v, want %v", listed, want)
	}

	dep := objects["Deployment/datacore-bridge"]
	if dep == nil {
		t.Fatalf("no Deployment datacore-bridge among %v", slices.Sorted(mapKeys(objects)))
	}
	if r := get(dep, "spec", "replicas"); r != 3 {
		t.Errorf("replicas = %v, want 3", r)
	}
	podLabels, _ := get(dep, "spec", "template", "metadata", "labels").(map[string]any)
	matches := func(sel any) bool {
		m, _ := sel.(map[string]any)
		if len(m) == 0 {
			return false
		}
		for k, v := range m {
			if podLabels[k] != v {
				return false
			}
		}
		return true
	}
	if !matches(get(dep, "spec", "selector", "matchLabels")) {
		t.Errorf("the Deployment's selector does not match its pod labels %v", podLabels)
	}
	container := get(dep, "spec", "template", "spec", "containers", 0)
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if got := get(container, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path = %v, want %s", probe, got, path)
		}
	}

	// The variables: from env and from the ConfigMaps of envFrom.
	known := knownVariables(t)
	vars := map[string]any{}
	envList, _ := get(container, "env").([]any)
	for _, e := range envList {
		name, _ := get(e, "name").(string)
		if v := get(e, "value"); v != nil {
			vars[name] = v
		} else {
			vars[name] = get(e, "valueFrom")
		}
	}
	envFrom, _ := get(container, "envFrom").([]any)
	for _, ef := range envFrom {
		if name := get(ef, "configMapRef", "name"); name != nil {
			cm := objects[fmt.Sprint("ConfigMap/", name)]
			if cm == nil {
				t.Errorf("envFrom names ConfigMap %v, which is not in deploy/kubernetes", name)
			}
			data, _ := get(cm, "data").(map[string]any)
			for k, v := range data {
				vars[k] = v
			}
		}
	}
	for k := range vars {
		if strings.HasPrefix(k, "DATACORE_") && !known[k] {
			t.Errorf("the pod sets %s, which is no variable of the bridge", k)
		}
	}
	if v, _ := vars["DATACORE_CLUSTER"].(string); v == "" {
		t.Errorf("DATACORE_CLUSTER = %v, want cluster mode", vars["DATACORE_CLUSTER"])
	}
	if v := vars["DATACORE_JETSTREAM"]; v != "true" {
		t.Errorf("DATACORE_JETSTREAM = %v, want true", v)
	}
	if got := get(vars["DATACORE_INSTANCE"], "fieldRef", "fieldPath"); got != "metadata.name" {
		t.Errorf("DATACORE_INSTANCE comes from %v, want the pod name (fieldRef metadata.name)", vars["DATACORE_INSTANCE"])
	}
	shutdown, err := time.ParseDuration(fmt.Sprint(vars["DATACORE_SHUTDOWN_TIMEOUT"]))
	if err != nil {
		t.Errorf("DATACORE_SHUTDOWN_TIMEOUT = %v: %v", vars["DATACORE_SHUTDOWN_TIMEOUT"], err)
	}
	grace := get(dep, "spec", "template", "spec", "terminationGracePeriodSeconds")
	if want := int(shutdown.Seconds()) + 10; grace != want || want != 40 {
		t.Errorf("terminationGracePeriodSeconds = %v, want the shutdown timeout (%v) + 10 s = 40", grace, shutdown)
	}

	// The Secret and ConfigMap the pod mounts or reads exist, with the keys used.
	vols, _ := get(dep, "spec", "template", "spec", "volumes").([]any)
	for _, v := range vols {
		if name := get(v, "secret", "secretName"); name != nil {
			secret := objects[fmt.Sprint("Secret/", name)]
			if secret == nil {
				t.Errorf("volume %v mounts Secret %v, which is not in deploy/kubernetes", get(v, "name"), name)
				continue
			}
			data, _ := get(secret, "stringData").(map[string]any)
			for _, mounted := range []string{"DATACORE_CREDENTIAL_SECRET_FILE"} {
				path := fmt.Sprint(vars[mounted])
				if _, ok := data[filepath.Base(path)]; !ok {
					t.Errorf("%s = %s, but Secret %v has no key %s", mounted, path, name, filepath.Base(path))
				}
			}
		}
	}

	pdb := objects["PodDisruptionBudget/datacore-bridge"]
	if pdb == nil || !matches(get(pdb, "spec", "selector", "matchLabels")) {
		t.Errorf("no PodDisruptionBudget datacore-bridge selecting the pods: %v", pdb)
	} else if get(pdb, "spec", "maxUnavailable") != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable = %v, want 1", get(pdb, "spec", "maxUnavailable"))
	}
	svc := objects["Service/datacore-bridge"]
	if svc == nil || !matches(get(svc, "spec", "selector")) {
		t.Errorf("no Service datacore-bridge selecting the pods: %v", svc)
	}

	// The PodMonitor scrapes the pods as job datacore-bridge, the job the alert rules select.
	pm := objects["PodMonitor/datacore-bridge"]
	if pm == nil || !matches(get(pm, "spec", "selector", "matchLabels")) {
		t.Fatalf("no PodMonitor datacore-bridge selecting the pods: %v", pm)
	}
	if job := podLabels[fmt.Sprint(get(pm, "spec", "jobLabel"))]; job != alertJob {
		t.Errorf("the PodMonitor's job is %v, want %s", job, alertJob)
	}
	if get(pm, "spec", "podMetricsEndpoints", 0, "port") != "http" || get(pm, "spec", "podMetricsEndpoints", 0, "path") != "/metrics" {
		t.Errorf("PodMonitor endpoint %v, want port http path /metrics", get(pm, "spec", "podMetricsEndpoints", 0))
	}
}

// alertJob is the scrape job the alert rules select with up{job=...}.
const alertJob = "datacore-bridge"

// TestMonitoringStack checks the Prometheus and Grafana files of the Compose
// file's monitoring profile: Prometheus scrapes the bridge as the job the
// alert rules select and loads them from where Compose mounts them, and
// Grafana's provisioning finds the dashboard and a Prometheus datasource.
func TestMonitoringStack(t *testing.T) {
	prom := yamlDocuments(t, "prometheus/prometheus.yml")[0]
	if get(prom, "scrape_configs", 0, "job_name") != alertJob ||
		get(prom, "scrape_configs", 0, "static_configs", 0, "targets", 0) != "bridge:8080" {
		t.Errorf("prometheus.yml scrapes %v, want job %s at bridge:8080", get(prom, "scrape_configs"), alertJob)
	}
	// Relative to prometheus.yml, which Compose mounts with alerts.yaml at /etc/prometheus.
	if rules := fmt.Sprint(get(prom, "rule_files", 0)); filepath.Join("prometheus", rules) != alertsFile {
		t.Errorf("prometheus.yml loads rules %s, want alerts.yaml", rules)
	}
	if !strings.Contains(string(must(os.ReadFile(alertsFile))), `up{job="`+alertJob+`"}`) {
		t.Errorf("%s does not select job %s", alertsFile, alertJob)
	}

	ds := yamlDocuments(t, "grafana/provisioning/datasources/prometheus.yaml")[0]
	if get(ds, "datasources", 0, "type") != "prometheus" || get(ds, "datasources", 0, "url") != "http://prometheus:9090" {
		t.Errorf("Grafana datasource %v, want prometheus at http://prometheus:9090", get(ds, "datasources", 0))
	}
	dash := yamlDocuments(t, "grafana/provisioning/dashboards/datacore-bridge.yaml")[0]
	// Compose mounts ./grafana at /etc/datacore-dashboards.
	if dir := get(dash, "providers", 0, "options", "path"); dir != "/etc/datacore-dashboards" {
		t.Errorf("Grafana dashboards provider reads %v, want /etc/datacore-dashboards", dir)
	}
	compose := string(must(os.ReadFile(composeFile)))
	for _, mount := range []string{"./grafana:/etc/datacore-dashboards", "./grafana/provisioning:/etc/grafana/provisioning", "./prometheus:/etc/prometheus"} {
		if !strings.Contains(compose, mount) {
			t.Errorf("%s does not mount %s", composeFile, mount)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
