package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/idtable"
)

// noGrants refuses every access call; the supervisors here never Run.
type noGrants struct{}

func (noGrants) Access(context.Context, access.Request) (access.Grant, error) {
	return access.Grant{}, errors.New("no access in this test")
}

// settleAll settles every message at once.
type settleAll struct{}

func (settleAll) Publish(_ context.Context, _ *nats.Msg, done func(error)) error {
	done(nil)
	return nil
}

// newSupervisor returns a real fixtures.Supervisor that is never Run, so that
// Follow only records the streams.
func newSupervisor(t *testing.T, maxStreams int) *fixtures.Supervisor {
	t.Helper()
	s, err := fixtures.New(fixtures.Options{Access: noGrants{}, Publisher: settleAll{}, Sport: "basketball", MaxStreams: maxStreams})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFollowIDsFromTable sends PUT /v1/fixtures/{id} and /v1/venues/{id}, through
// a real Supervisor, for every ID of the table shared with fixtures and config:
// the admin API accepts exactly the IDs fixtures.ValidateID accepts, does not
// trim them, and refuses the others with 400 and a message naming the problem.
func TestFollowIDsFromTable(t *testing.T) {
	for _, tc := range idtable.Load(t) {
		if tc.ID == "" {
			continue // no route has an empty {id}
		}
		for _, base := range []string{"/v1/fixtures/", "/v1/venues/"} {
			t.Run(tc.Name+base, func(t *testing.T) {
				sup := newSupervisor(t, 0)
				h := New(Options{Supervisor: sup, AdminToken: testToken})
				rec := serve(t, h, http.MethodPut, base+url.PathEscape(tc.ID), "Bearer "+testToken)
				if tc.Valid {
					if rec.Code != http.StatusCreated {
						t.Fatalf("status = %d %s, want 201", rec.Code, rec.Body)
					}
					if s := sup.Streams(); len(s) != 1 || s[0].ID != tc.ID {
						t.Errorf("streams = %+v, want one with ID %q", s, tc.ID)
					}
					return
				}
				if rec.Code != http.StatusBadRequest {
					t.Fatalf("status = %d %s, want 400", rec.Code, rec.Body)
				}
				if msg := jsonError(t, rec); !strings.Contains(msg, "invalid id") {
					t.Errorf("error = %q, want it to say the id is invalid", msg)
				}
				if s := sup.Streams(); len(s) != 0 {
					t.Errorf("streams = %+v after a refused PUT", s)
				}
			})
		}
	}
}

// TestFollowPastMaxStreams fills a real Supervisor to its cap through the API:
// one more PUT answers 409 with an error naming the MaxStreams limit and
// starts nothing; a PUT of a followed ID still answers 200.
func TestFollowPastMaxStreams(t *testing.T) {
	sup := newSupervisor(t, 2)
	h := New(Options{Supervisor: sup, AdminToken: testToken})
	for _, target := range []string{"/v1/fixtures/f1", "/v1/venues/v1"} {
		if rec := serve(t, h, http.MethodPut, target, "Bearer "+testToken); rec.Code != http.StatusCreated {
			t.Fatalf("PUT %s = %d %s", target, rec.Code, rec.Body)
		}
	}
	rec := serve(t, h, http.MethodPut, "/v1/fixtures/f2", "Bearer "+testToken)
	if rec.Code != http.StatusConflict {
		t.Fatalf("PUT past the cap = %d %s, want 409", rec.Code, rec.Body)
	}
	if msg := jsonError(t, rec); !strings.Contains(msg, "2 streams are followed, the most the MaxStreams limit allows") {
		t.Errorf("error = %q, want it to name the MaxStreams limit and the count", msg)
	}
	if s := sup.Streams(); len(s) != 2 {
		t.Errorf("%d streams after the refused PUT, want 2: %+v", len(s), s)
	}
	if rec := serve(t, h, http.MethodPut, "/v1/fixtures/f1", "Bearer "+testToken); rec.Code != http.StatusOK {
		t.Errorf("PUT of a followed fixture at the cap = %d %s, want 200", rec.Code, rec.Body)
	}
}
