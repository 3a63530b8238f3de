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
func newSupervisor(t *testing.T) *fixtures.Supervisor {
	t.Helper()
	s, err := fixtures.New(fixtures.Options{Access: noGrants{}, Publisher: settleAll{}, Sport: "basketball"})
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
				sup := newSupervisor(t)
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
