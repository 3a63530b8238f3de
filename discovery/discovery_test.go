package discovery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/metrics"
)

func TestListReadsEveryPage(t *testing.T) {
	tests := []struct {
		name     string
		links    bool
		rows     int
		pageSize int
		calls    int
	}{
		{"links.next", true, 25, 10, 3},
		{"offset and count", false, 25, 10, 3},
		{"exact pages", false, 20, 10, 2},
		{"empty", true, 0, 10, 1},
		{"one page", false, 7, 100, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rest := newFakeREST()
				rest.links = tt.links
				var want []Fixture
				for i := range tt.rows {
					want = append(want, Fixture{FixtureID: fmt.Sprintf("f%d", i), Status: "SCHEDULED", StartTimeUTC: startIn(time.Hour)})
				}
				rest.set("org1", want...)
				tokens := &fakeTokens{ttl: time.Hour}
				c := newTestClient(rest, tokens, tt.pageSize, "org1")
				from := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
				got, err := c.List(t.Context(), "org1", from, from.Add(12*time.Hour))
				if err != nil {
					t.Fatalf("List: %v", err)
				}
				if len(got) != len(want) {
					t.Fatalf("got %d fixtures, want %d", len(got), len(want))
				}
				for i := range want {
					if got[i] != want[i] {
						t.Errorf("row %d = %+v, want %+v", i, got[i], want[i])
					}
				}
				calls := rest.log()
				if len(calls) != tt.calls {
					t.Fatalf("%d calls, want %d", len(calls), tt.calls)
				}
				for _, c := range calls {
					if c.path != "/v1/basketball/o/org1/fixtures" || c.auth != "Bearer tok-1" ||
						c.from != "2026-11-30T06:00:00" || c.to != "2026-11-30T18:00:00" {
						t.Errorf("call %+v", c)
					}
				}
				if tokens.count() != 1 {
					t.Errorf("token calls = %d, want 1", tokens.count())
				}
			})
		})
	}
}

func TestListRenewsTokenOnceOn401(t *testing.T) {
	t.Run("renewed token works", func(t *testing.T) {
		rest := newFakeREST()
		rest.set("org1", Fixture{FixtureID: "f1", Status: "SCHEDULED"})
		rest.refuse["tok-1"] = true
		tokens := &fakeTokens{ttl: time.Hour}
		c := newTestClient(rest, tokens, 10, "org1")
		got, err := c.List(t.Context(), "org1", time.Now(), time.Now())
		if err != nil || len(got) != 1 {
			t.Fatalf("List = %v, %v", got, err)
		}
		if n := tokens.count(); n != 2 {
			t.Errorf("token calls = %d, want 2", n)
		}
		if calls := rest.log(); len(calls) != 2 || calls[1].auth != "Bearer tok-2" {
			t.Errorf("calls = %+v", calls)
		}
	})
	t.Run("renewed token refused too", func(t *testing.T) {
		rest := newFakeREST()
		rest.refuse["tok-1"], rest.refuse["tok-2"], rest.refuse["tok-3"] = true, true, true
		tokens := &fakeTokens{ttl: time.Hour}
		c := newTestClient(rest, tokens, 10, "org1")
		_, err := c.List(t.Context(), "org1", time.Now(), time.Now())
		if !errors.Is(err, access.ErrUnauthorized) || !IsPermanent(err) {
			t.Fatalf("err = %v, want a permanent unauthorized", err)
		}
		if n := tokens.count(); n != 2 {
			t.Errorf("token calls = %d, want 2 (renewed once)", n)
		}
		if strings.Contains(err.Error(), "tok-") {
			t.Errorf("error holds the token: %v", err)
		}
	})
}

func TestSelect(t *testing.T) {
	now := time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return now.Add(d).Format(TimeLayout) }
	const ahead = 30 * time.Minute
	tests := []struct {
		name   string
		status string
		start  string
		want   Decision
	}{
		{"scheduled within ahead", "SCHEDULED", at(29 * time.Minute), Follow},
		{"scheduled at the edge", "SCHEDULED", at(30 * time.Minute), Follow},
		{"scheduled beyond ahead", "SCHEDULED", at(31 * time.Minute), Ignore},
		{"pending", "PENDING", at(10 * time.Minute), Follow},
		{"warm up", "WARM_UP", at(time.Minute), Follow},
		{"on pitch", "ON_PITCH", at(0), Follow},
		{"about to start", "ABOUT_TO_START", at(0), Follow},
		{"in progress, started long ago", "IN_PROGRESS", at(-3 * time.Hour), Follow},
		{"finished, not official", "FINISHED", at(-2 * time.Hour), Follow},
		{"confirmed", "CONFIRMED", at(-2 * time.Hour), Final},
		{"cancelled", "CANCELLED", at(10 * time.Minute), Final},
		{"abandoned", "ABANDONED", at(-time.Hour), Final},
		{"postponed", "POSTPONED", at(10 * time.Minute), Final},
		{"draft", "DRAFT", at(10 * time.Minute), Ignore},
		{"bye", "BYE", at(10 * time.Minute), Ignore},
		{"if needed", "IF_NEEDED", at(10 * time.Minute), Ignore},
		{"no start", "SCHEDULED", "", Ignore},
		{"unreadable start", "SCHEDULED", "tonight", Ignore},
		{"RFC 3339 start", "SCHEDULED", now.Add(5 * time.Minute).Format(time.RFC3339), Follow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Select(Fixture{FixtureID: "f", Status: tt.status, StartTimeUTC: tt.start}, now, ahead); got != tt.want {
				t.Errorf("Select = %v, want %v", got, tt.want)
			}
		})
	}
}

// pollerBed is a Poller on a fake REST API and a fake supervisor.
type pollerBed struct {
	rest     *fakeREST
	tokens   *fakeTokens
	follower *fakeFollower
	m        *metrics.Metrics
	p        *Poller
}

func newPollerBed(t *testing.T, o PollerOptions) *pollerBed {
	t.Helper()
	b := &pollerBed{rest: newFakeREST(), tokens: &fakeTokens{ttl: time.Hour}, follower: newFakeFollower(), m: metrics.New()}
	if len(o.Organizations) == 0 {
		o.Organizations = []string{"org1"}
	}
	o.Lister = newTestClient(b.rest, b.tokens, 10, o.Organizations...)
	o.Follower = b.follower
	o.Metrics = b.m
	p, err := NewPoller(o)
	if err != nil {
		t.Fatal(err)
	}
	b.p = p
	return b
}

// run runs the poller until the test's bubble ends it.
func (b *pollerBed) run(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.p.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func TestPollerFollowRule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newPollerBed(t, PollerOptions{Interval: time.Minute, Ahead: 30 * time.Minute, Venues: true, Organizations: []string{"org1", "org2"}})
		b.rest.set("org1",
			Fixture{FixtureID: "soon", Status: "SCHEDULED", StartTimeUTC: startIn(20 * time.Minute), VenueID: "v1"},
			Fixture{FixtureID: "later", Status: "SCHEDULED", StartTimeUTC: startIn(45 * time.Minute), VenueID: "v2"},
			Fixture{FixtureID: "live", Status: "IN_PROGRESS", StartTimeUTC: startIn(-time.Hour)},
			Fixture{FixtureID: "done", Status: "CONFIRMED", StartTimeUTC: startIn(-3 * time.Hour)},
			Fixture{FixtureID: "off", Status: "CANCELLED", StartTimeUTC: startIn(10 * time.Minute)},
			Fixture{FixtureID: "draft", Status: "DRAFT", StartTimeUTC: startIn(10 * time.Minute)},
		)
		b.rest.set("org2", Fixture{FixtureID: "other", Status: "WARM_UP", StartTimeUTC: startIn(5 * time.Minute)})
		b.run(t)
		synctest.Wait()
		want := map[string]fixtures.Source{"fixture/soon": fixtures.SourceDiscovery, "venue/v1": fixtures.SourceDiscovery,
			"fixture/live": fixtures.SourceDiscovery, "fixture/other": fixtures.SourceDiscovery}
		if got := b.follower.keys(); !equalMaps(got, want) {
			t.Fatalf("followed %v, want %v", got, want)
		}
		if got := b.follower.finalCalls(); len(got) != 0 {
			t.Errorf("final statuses passed on for fixtures never followed: %v", got)
		}

		// 16 minutes later "later" is within 30 minutes; "live" is CONFIRMED.
		time.Sleep(16 * time.Minute)
		b.rest.set("org1",
			Fixture{FixtureID: "later", Status: "SCHEDULED", StartTimeUTC: startIn(29 * time.Minute), VenueID: "v2"},
			Fixture{FixtureID: "live", Status: "CONFIRMED", StartTimeUTC: startIn(-time.Hour)},
		)
		time.Sleep(time.Minute)
		synctest.Wait()
		want["fixture/later"], want["venue/v2"] = fixtures.SourceDiscovery, fixtures.SourceDiscovery
		if got := b.follower.keys(); !equalMaps(got, want) {
			t.Fatalf("followed %v, want %v", got, want)
		}
		if got := b.follower.finalCalls(); len(got) != 1 || got["live"] != "CONFIRMED" {
			t.Errorf("final statuses passed on = %v, want live CONFIRMED", got)
		}
		st := b.p.Status()
		if st.Discovered != 4 || st.LastError != "" || st.LastListingAt == nil || st.NextPollAt == nil ||
			!st.NextPollAt.After(*st.LastListingAt) || len(st.Organizations) != 2 {
			t.Errorf("status = %+v", st)
		}
		if got := testutil.ToFloat64(b.m.DiscoveredFixtures); got != 4 {
			t.Errorf("discovered_fixtures = %v, want 4", got)
		}
		if got := testutil.ToFloat64(b.m.DiscoveryRuns.WithLabelValues("ok")); got != 18 {
			t.Errorf("runs ok = %v, want 18 (one at start, one a minute for 17 minutes)", got)
		}
	})
}

func TestPollerTokenReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newPollerBed(t, PollerOptions{Interval: time.Minute, Organizations: []string{"org1", "org2"}})
		rows := make([]Fixture, 25) // three pages
		for i := range rows {
			rows[i] = Fixture{FixtureID: fmt.Sprintf("f%d", i), Status: "SCHEDULED", StartTimeUTC: startIn(48 * time.Hour)}
		}
		b.rest.set("org1", rows...)
		b.rest.set("org2", rows...)
		b.run(t)
		time.Sleep(3*time.Hour + 30*time.Second)
		synctest.Wait()
		if n := len(b.rest.log()); n != 181*6 {
			t.Errorf("listing calls = %d, want %d", n, 181*6)
		}
		// Tokens of an hour, renewed shortly before they expire: 3 hours need 4.
		if n := b.tokens.count(); n != 4 {
			t.Errorf("token calls = %d, want 4", n)
		}
	})
}

func TestPollerFailedListingNeverUnfollows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newPollerBed(t, PollerOptions{Interval: time.Minute})
		b.rest.set("org1",
			Fixture{FixtureID: "a", Status: "IN_PROGRESS", StartTimeUTC: startIn(-time.Hour)},
			Fixture{FixtureID: "b", Status: "SCHEDULED", StartTimeUTC: startIn(time.Minute)},
		)
		b.run(t)
		synctest.Wait()
		// One listing fails, then "a" is missing from the next ones.
		b.rest.fail(fault{status: 500})
		b.rest.set("org1", Fixture{FixtureID: "b", Status: "IN_PROGRESS", StartTimeUTC: startIn(-time.Minute)})
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		want := map[string]fixtures.Source{"fixture/a": fixtures.SourceDiscovery, "fixture/b": fixtures.SourceDiscovery}
		if got := b.follower.keys(); !equalMaps(got, want) {
			t.Fatalf("followed %v, want %v", got, want)
		}
		if got := b.follower.finalCalls(); len(got) != 0 {
			t.Errorf("stops asked: %v", got)
		}
		if got := testutil.ToFloat64(b.m.DiscoveryRuns.WithLabelValues("server_error")); got != 1 {
			t.Errorf("runs server_error = %v, want 1", got)
		}
		if err := b.p.Ready(); err != nil {
			t.Errorf("Ready after a transient failure = %v, want nil", err)
		}
	})
}

func TestPollerAdminDeleteSticks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newPollerBed(t, PollerOptions{Interval: time.Minute})
		b.rest.set("org1", Fixture{FixtureID: "a", Status: "IN_PROGRESS", StartTimeUTC: startIn(-time.Hour)})
		b.run(t)
		synctest.Wait()
		b.follower.unfollow("fixture/a") // DELETE /v1/fixtures/a
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if got := b.follower.keys(); len(got) != 0 {
			t.Fatalf("followed %v after the delete, want nothing", got)
		}
		if n := b.follower.followCalls("fixture/a"); n != 1 {
			t.Errorf("FollowFrom(a) called %d times, want 1", n)
		}
	})
}

func TestPollerRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newPollerBed(t, PollerOptions{Interval: time.Minute})
		b.rest.set("org1", Fixture{FixtureID: "a", Status: "IN_PROGRESS", StartTimeUTC: startIn(-time.Hour)})
		b.run(t)
		synctest.Wait()
		b.rest.fail(fault{status: 429, retryAfter: "600"})
		time.Sleep(time.Minute) // the second poll is refused
		synctest.Wait()
		refused := time.Now()
		time.Sleep(15 * time.Minute)
		synctest.Wait()
		calls := b.rest.log()
		if len(calls) < 3 || calls[1].status != 429 {
			t.Fatalf("calls = %+v", calls)
		}
		if gap := calls[2].at.Sub(refused); gap < 10*time.Minute {
			t.Errorf("polled again %v after a 429 with Retry-After 600, want at least 10m", gap)
		}
		if got := b.follower.keys(); len(got) != 1 {
			t.Errorf("followed %v, want a kept", got)
		}
		if got := testutil.ToFloat64(b.m.DiscoveryRuns.WithLabelValues("rate_limited")); got != 1 {
			t.Errorf("runs rate_limited = %v, want 1", got)
		}
	})
}

func TestPollerUnauthorizedIsPermanent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newPollerBed(t, PollerOptions{Interval: time.Minute})
		b.rest.set("org1", Fixture{FixtureID: "a", Status: "IN_PROGRESS", StartTimeUTC: startIn(-time.Hour)})
		b.run(t)
		synctest.Wait()
		b.rest.mu.Lock()
		for i := range 100 {
			b.rest.refuse[fmt.Sprintf("tok-%d", i)] = true
		}
		b.rest.mu.Unlock()
		b.tokens.mu.Lock()
		b.tokens.ttl = time.Minute / 2 // every poll needs a token
		b.tokens.mu.Unlock()
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		err := b.p.Ready()
		if err == nil || !strings.Contains(err.Error(), "token rejected (401)") || !strings.Contains(err.Error(), "check the credentials") {
			t.Fatalf("Ready = %v, want the 401 and what to check", err)
		}
		if st := b.p.Status(); st.LastError == "" {
			t.Errorf("status has no last error: %+v", st)
		}
		n := testutil.ToFloat64(b.m.DiscoveryRuns.WithLabelValues("unauthorized"))
		// Retried slowly: from 1 minute doubling, about 5 polls in 30 minutes, not 30.
		if n < 2 || n > 8 {
			t.Errorf("runs unauthorized = %v in 30 minutes, want a slow retry", n)
		}
		if got := b.follower.keys(); len(got) != 1 {
			t.Errorf("followed %v, want a kept", got)
		}
		// Fixed: ready again after the next poll.
		b.rest.mu.Lock()
		b.rest.refuse = map[string]bool{}
		b.rest.mu.Unlock()
		time.Sleep(time.Hour)
		synctest.Wait()
		if err := b.p.Ready(); err != nil {
			t.Errorf("Ready after the fix = %v", err)
		}
	})
}

func equalMaps[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestPollTokenFailureStopsThePoll checks that a failed token request ends
// the poll (the other organizations would fail the same way) and is counted
// by its outcome.
func TestPollTokenFailureStopsThePoll(t *testing.T) {
	b := newPollerBed(t, PollerOptions{Interval: time.Minute, Organizations: []string{"org1", "org2", "org3"}})
	b.tokens.err = &access.Error{Status: 503, Err: access.ErrUnavailable}
	err := b.p.Poll(t.Context())
	if !errors.Is(err, access.ErrUnavailable) || IsPermanent(err) {
		t.Fatalf("Poll = %v, want a transient unavailable", err)
	}
	if n := b.tokens.count(); n != 1 {
		t.Errorf("token calls = %d, want 1", n)
	}
	if n := len(b.rest.log()); n != 0 {
		t.Errorf("listing calls = %d, want 0", n)
	}
	if got := testutil.ToFloat64(b.m.DiscoveryRuns.WithLabelValues("server_error")); got != 1 {
		t.Errorf("runs server_error = %v, want 1", got)
	}
	if err := b.p.Ready(); err != nil {
		t.Errorf("Ready = %v, want nil for a transient failure", err)
	}
}
