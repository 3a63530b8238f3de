// Package deploy holds what ships for operators beside the binary: the Grafana
// dashboard (grafana/), the Prometheus alert rules (prometheus/), a Compose
// file that runs NATS, the emulator and the bridge (compose.yaml), and the
// Kubernetes manifests of cluster mode (kubernetes/). It has no Go code; its
// tests parse those files and check every metric, label and label value they
// use against the /metrics of a running bridge.
package deploy
