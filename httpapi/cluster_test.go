package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/cluster"
)

// fakeCluster records the admin calls that reach the cluster's followed set.
type fakeCluster struct {
	mu       sync.Mutex
	calls    []string
	err      error // returned by Follow and Unfollow when set
	readyErr error
}

func (f *fakeCluster) Follow(kind access.Kind, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "follow "+string(kind)+" "+id)
	return f.err == nil, f.err
}

func (f *fakeCluster) Unfollow(kind access.Kind, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "unfollow "+string(kind)+" "+id)
	return f.err == nil, f.err
}

func (f *fakeCluster) Status() cluster.Status {
	return cluster.Status{Cluster: "c", Instance: "pod-1", Replicas: 2, Members: []cluster.MemberStatus{{Instance: "pod-1"}}}
}

func (f *fakeCluster) Ready() error { return f.readyErr }

func TestClusterMode(t *testing.T) {
	sup, cl := newFake(), &fakeCluster{}
	h := New(Options{Supervisor: sup, Cluster: cl, AdminToken: testToken})

	rec := serve(t, h, http.MethodPut, "/v1/fixtures/f1", "Bearer "+testToken)
	if rec.Code != http.StatusCreated {
		t.Fatalf("PUT = %d, want 201", rec.Code)
	}
	rec = serve(t, h, http.MethodDelete, "/v1/venues/v1", "Bearer "+testToken)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("DELETE = %d, want 204", rec.Code)
	}
	if got, want := fmt.Sprint(cl.calls), "[follow fixture f1 unfollow venue v1]"; got != want {
		t.Errorf("cluster calls %s, want %s", got, want)
	}
	if n := sup.callCount(); n != 0 {
		t.Errorf("the supervisor got %d admin calls in cluster mode, want 0: the set is the cluster's", n)
	}

	rec = serve(t, h, http.MethodGet, "/v1/cluster", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /v1/cluster = %d", rec.Code)
	}
	var st cluster.Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Instance != "pod-1" || st.Replicas != 2 || len(st.Members) != 1 {
		t.Errorf("GET /v1/cluster = %s (%v)", rec.Body.String(), err)
	}

	cl.readyErr = errors.New("cluster: not a member yet")
	rec = serve(t, h, http.MethodGet, "/readyz", "")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "cluster: not a member yet") {
		t.Errorf("/readyz = %d %s, want 503 naming the cluster", rec.Code, rec.Body.String())
	}
}

func TestClusterUnavailable(t *testing.T) {
	cl := &fakeCluster{err: fmt.Errorf("%w: nats: timeout", cluster.ErrUnavailable)}
	h := New(Options{Supervisor: newFake(), Cluster: cl, AdminToken: testToken})
	for _, method := range []string{http.MethodPut, http.MethodDelete} {
		rec := serve(t, h, method, "/v1/fixtures/f1", "Bearer "+testToken)
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("%s with KV away = %d, want 503", method, rec.Code)
		}
		if msg := jsonError(t, rec); !strings.Contains(msg, "JetStream KV unavailable") {
			t.Errorf("%s error %q does not say why", method, msg)
		}
	}
}

func TestClusterStatusWithoutClusterMode(t *testing.T) {
	h := New(Options{Supervisor: newFake()})
	rec := serve(t, h, http.MethodGet, "/v1/cluster", "")
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /v1/cluster alone = %d, want 404", rec.Code)
	}
	rec = serve(t, h, http.MethodPost, "/v1/cluster", "")
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /v1/cluster = %d, want 405", rec.Code)
	}
}
