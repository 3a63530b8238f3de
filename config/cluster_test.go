package config

import (
	"testing"
	"time"
)

func TestClusterConfigErrors(t *testing.T) {
	base := map[string]string{"DATACORE_CREDENTIAL_ID": "id", "DATACORE_CREDENTIAL_SECRET": "sec", "DATACORE_FIXTURES": "f1"}
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
		wantMsg string
	}{
		{"cluster name with a dot", map[string]string{"DATACORE_CLUSTER": "a.b"}, "DATACORE_CLUSTER", `only letters, digits, '-' and '_', got "a.b"`},
		{"cluster name too long", map[string]string{"DATACORE_CLUSTER": string(make65())}, "DATACORE_CLUSTER", "at most 64"},
		{"instance with a space", map[string]string{"DATACORE_CLUSTER": "c", "DATACORE_INSTANCE": "pod 1"}, "DATACORE_INSTANCE", `got "pod 1"`},
		{"instance without cluster", map[string]string{"DATACORE_INSTANCE": "pod-1"}, "DATACORE_INSTANCE", "DATACORE_CLUSTER is unset"},
		{"replicas without cluster", map[string]string{"DATACORE_REPLICAS": "2", "DATACORE_JETSTREAM": "true"}, "DATACORE_REPLICAS", "DATACORE_CLUSTER is unset"},
		{"replicas zero", map[string]string{"DATACORE_CLUSTER": "c", "DATACORE_REPLICAS": "0"}, "DATACORE_REPLICAS", `must be at least 1, got "0"`},
		{"replicas too many", map[string]string{"DATACORE_CLUSTER": "c", "DATACORE_REPLICAS": "9", "DATACORE_JETSTREAM": "true"}, "DATACORE_REPLICAS", "at most 5"},
		{"replicas not a number", map[string]string{"DATACORE_CLUSTER": "c", "DATACORE_REPLICAS": "two"}, "DATACORE_REPLICAS", "must be an integer"},
		{"two replicas with core nats", map[string]string{"DATACORE_CLUSTER": "c", "DATACORE_REPLICAS": "2"}, "DATACORE_REPLICAS", "DATACORE_JETSTREAM is false"},
		{"lease ttl too short", map[string]string{"DATACORE_CLUSTER": "c", "DATACORE_LEASE_TTL": "500ms"}, "DATACORE_LEASE_TTL", `must be from 1s to 5m0s, got "500ms"`},
		{"lease ttl too long", map[string]string{"DATACORE_CLUSTER": "c", "DATACORE_LEASE_TTL": "1h"}, "DATACORE_LEASE_TTL", "must be from 1s"},
		{"kv replicas without cluster", map[string]string{"DATACORE_KV_REPLICAS": "3"}, "DATACORE_KV_REPLICAS", "DATACORE_CLUSTER is unset"},
		{"kv replicas zero", map[string]string{"DATACORE_CLUSTER": "c", "DATACORE_KV_REPLICAS": "0"}, "DATACORE_KV_REPLICAS", `must be from 1 to 5 (JetStream's limit), got "0"`},
		{"kv replicas six", map[string]string{"DATACORE_CLUSTER": "c", "DATACORE_KV_REPLICAS": "6"}, "DATACORE_KV_REPLICAS", "must be from 1 to 5"},
		{"lease ttl not a duration", map[string]string{"DATACORE_CLUSTER": "c", "DATACORE_LEASE_TTL": "10"}, "DATACORE_LEASE_TTL", "must be a duration"},
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

func make65() []byte {
	b := make([]byte, 65)
	for i := range b {
		b[i] = 'a'
	}
	return b
}

func TestClusterConfig(t *testing.T) {
	tests := []struct {
		name         string
		env          map[string]string
		wantCluster  string
		wantReplicas int
		wantTTL      time.Duration
		wantShutdown time.Duration
	}{
		{
			name:         "defaults without a cluster",
			env:          map[string]string{"DATACORE_FIXTURES": "f1"},
			wantReplicas: 1, wantTTL: 10 * time.Second, wantShutdown: 10 * time.Second,
		},
		{
			name:        "a cluster needs nothing to follow and waits longer to stop",
			env:         map[string]string{"DATACORE_CLUSTER": " prod "},
			wantCluster: "prod", wantReplicas: 1, wantTTL: 10 * time.Second, wantShutdown: ClusterShutdownTimeout,
		},
		{
			name: "a set shutdown timeout wins in a cluster",
			env: map[string]string{"DATACORE_CLUSTER": "prod", "DATACORE_SHUTDOWN_TIMEOUT": "12s", "DATACORE_REPLICAS": "2",
				"DATACORE_JETSTREAM": "true", "DATACORE_LEASE_TTL": "1s", "DATACORE_INSTANCE": "pod-1"},
			wantCluster: "prod", wantReplicas: 2, wantTTL: time.Second, wantShutdown: 12 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			setEnv(t, map[string]string{"DATACORE_CREDENTIAL_ID": "id", "DATACORE_CREDENTIAL_SECRET": "sec"})
			setEnv(t, tt.env)
			c, err := Load()
			if err != nil {
				t.Fatal(err)
			}
			if c.Cluster != tt.wantCluster || c.Replicas != tt.wantReplicas || c.LeaseTTL != tt.wantTTL || c.ShutdownTimeout != tt.wantShutdown {
				t.Errorf("cluster %q replicas %d ttl %s shutdown %s; want %q %d %s %s", c.Cluster, c.Replicas, c.LeaseTTL, c.ShutdownTimeout,
					tt.wantCluster, tt.wantReplicas, tt.wantTTL, tt.wantShutdown)
			}
		})
	}
}
