package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/discovery"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/poll"
	"github.com/datacore-bridge/datacore-bridge/sim"
	"github.com/datacore-bridge/datacore-bridge/sink"
)

// discoveryConfig points the bridge at the emulator's REST API for orgs,
// with no fixture of its own.
func discoveryConfig(orgs []string, interval, ahead time.Duration) func(*config.Config) {
	return func(c *config.Config) {
		c.Organizations = orgs
		c.RESTURL = strings.TrimSuffix(c.APIURL, "/v1") + "/rest/v1"
		c.DiscoverInterval = interval
		c.DiscoverAhead = ahead
		c.Fixtures = nil
	}
}

// gameID is the emulator's fixture ID of game n of org.
func gameID(org string, n int) string { return "sim:org:" + org + ":game:" + strconv.Itoa(n) }

// gameStarts reads the start of every game of org that the emulator lists
// (every page), through the REST API as a client would: one token call and
// the listing calls.
func gameStarts(t *testing.T, e *env, org string) map[string]time.Time {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"sport": e.cfg.Sport, "organization": map[string]any{"id": []string{org}},
		"credentialId": testCredID, "credentialSecret": testCredSecret})
	resp, err := http.Post(e.emu.APIURL()+"/oauth2/rest/token", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Data struct{ Token string } }
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || tok.Data.Token == "" {
		t.Fatalf("REST token: %d %v", resp.StatusCode, err)
	}
	out := map[string]time.Time{}
	next := e.emu.RESTURL() + "/" + e.cfg.Sport + "/o/" + org + "/fixtures?limit=1000&fromTimeUTC=2000-01-01T00:00:00&toTimeUTC=" +
		time.Now().UTC().Add(time.Minute).Format(discovery.TimeLayout)
	for next != "" {
		req, _ := http.NewRequest(http.MethodGet, next, nil)
		req.Header.Set("Authorization", "Bearer "+tok.Data.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Links struct{ Next string }
			Data  []discovery.Fixture
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("REST listing: %d %v", resp.StatusCode, err)
		}
		for _, f := range page.Data {
			start, ok := f.Start()
			if !ok {
				t.Fatalf("listed game without a start: %+v", f)
			}
			out[f.FixtureID] = start
		}
		next = page.Links.Next
	}
	return out
}

// firstMessages records when the first NATS message of each fixture arrived.
type firstMessages struct {
	mu    sync.Mutex
	first map[string]time.Time
}

func (e *env) firstMessages() *firstMessages {
	e.t.Helper()
	fm := &firstMessages{first: map[string]time.Time{}}
	nc, err := nats.Connect(e.ns.ClientURL())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	_, err = nc.Subscribe(e.cfg.SubjectPrefix+"."+e.cfg.Sport+".fixture.>", func(m *nats.Msg) {
		at := time.Now()
		tokens := strings.Split(m.Subject, ".")
		id, err := sink.UnescapeToken(tokens[len(tokens)-2])
		if err != nil {
			return
		}
		fm.mu.Lock()
		if _, ok := fm.first[id]; !ok {
			fm.first[id] = at
		}
		fm.mu.Unlock()
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
	return fm
}

func (fm *firstMessages) at(id string) (time.Time, bool) {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	t, ok := fm.first[id]
	return t, ok
}

// discovered returns the IDs of the fixtures followed with source discovery,
// and fails the test for any other source.
func discovered(t *testing.T, e *env) map[string]fixtures.StreamInfo {
	t.Helper()
	out := map[string]fixtures.StreamInfo{}
	for _, s := range e.subscriptions() {
		if s.Source != fixtures.SourceDiscovery {
			t.Errorf("stream %s has source %q, want discovery", s.ID, s.Source)
		}
		out[s.ID] = s
	}
	return out
}

// TestDiscoverFollowsGamesInTheirWindow plays an organization's schedule:
// each game is followed (source discovery) within one poll interval of
// entering the Ahead window and before its start, and unfollowed after its
// CONFIRMED status; games too far ahead are not followed early, games
// already CONFIRMED are never followed; every message of a discovered game
// reaches NATS once.
func TestDiscoverFollowsGamesInTheirWindow(t *testing.T) {
	const (
		org      = "o1"
		interval = time.Second
		ahead    = 4 * time.Second
	)
	e := newEnv(t, envOptions{
		sim: sim.Options{
			Organizations: []string{org},
			// Games -4 and -3 are CONFIRMED when the emulator starts, -2
			// starts with it, -1 is in the window at once, 0 and 1 enter it later.
			Schedule: sim.Schedule{Every: 3 * time.Second, Lead: 6 * time.Second, Length: time.Second,
				FinalAfter: 500 * time.Millisecond, WarmUp: time.Second, Past: 4},
			Feed: sim.Feed{Rate: 50},
		},
		configure: func(c *config.Config) {
			discoveryConfig([]string{org}, interval, ahead)(c)
			c.StopAfterFinal = 300 * time.Millisecond
		},
	})
	c := e.collect()
	fm := e.firstMessages()
	starts := gameStarts(t, e, org)

	firstSeen := map[string]time.Time{}
	gone := map[string]time.Time{}
	watched := gameID(org, 1)
	poll.Wait(t, 25*time.Second, "game 1 to be followed, then unfollowed", func() bool {
		now := time.Now()
		subs := discovered(t, e)
		for id := range subs {
			if _, ok := firstSeen[id]; ok {
				continue
			}
			firstSeen[id] = now
			// The poll that followed it ran before now: the game was in the window then.
			if start, ok := starts[id]; !ok {
				t.Errorf("followed %s, which the emulator does not list", id)
			} else if start.After(now.Add(ahead)) {
				t.Errorf("followed %s at %s, %s before its start: outside the window of %s",
					id, now.Format(time.StampMilli), start.Sub(now), ahead)
			}
		}
		for id := range firstSeen {
			if _, ok := subs[id]; !ok {
				if _, ok := gone[id]; !ok {
					gone[id] = now
				}
			}
		}
		_, seen := firstSeen[watched]
		_, left := gone[watched]
		return seen && left
	})
	for _, n := range []int{-4, -3} {
		if at, ok := firstSeen[gameID(org, n)]; ok {
			t.Errorf("game %d, CONFIRMED before the bridge started, was followed at %s", n, at.Format(time.StampMilli))
		}
	}
	for _, n := range []int{-2, -1, 0, 1} {
		id := gameID(org, n)
		if _, ok := firstSeen[id]; !ok {
			t.Errorf("game %d was never followed", n)
		}
		if _, ok := gone[id]; !ok {
			t.Errorf("game %d was not unfollowed after its final status", n)
		}
	}
	// Games 0 and 1 enter the window while the bridge runs.
	for _, n := range []int{0, 1} {
		id := gameID(org, n)
		start, seen := starts[id], firstSeen[id]
		enter := start.Add(-ahead)
		msg, ok := fm.at(id)
		lag := "none"
		if ok {
			lag = msg.Sub(enter).Round(time.Millisecond).String()
		}
		t.Logf("game %d: enters the window at %s; followed %s after (%s before its start); first message in NATS %s after; unfollowed %s after its start",
			n, enter.Format(time.StampMilli), seen.Sub(enter).Round(time.Millisecond), start.Sub(seen).Round(time.Millisecond),
			lag, gone[id].Sub(start).Round(time.Millisecond))
		if !seen.Before(start) {
			t.Errorf("game %d followed at %s, not before its start %s", n, seen.Format(time.StampMilli), start.Format(time.StampMilli))
		}
		// One interval, plus a margin for the poll's own calls and the
		// subscription listing of this test on a loaded machine.
		if d := seen.Sub(enter); d > interval+time.Second {
			t.Errorf("game %d followed %s after entering the window, want within one interval (%s)", n, d, interval)
		}
		if !ok {
			t.Errorf("no message of game %d reached NATS", n)
		}
		// Not after the game left the window (final status) and the unfollow.
		if gone[id].Before(start.Add(time.Second + 500*time.Millisecond)) {
			t.Errorf("game %d unfollowed at %s, before its CONFIRMED status", n, gone[id].Format(time.StampMilli))
		}
	}

	// Every message of the finished games reached NATS once.
	ids := []string{gameID(org, -1), gameID(org, 0), gameID(org, 1)}
	want := upTo(e, ids, nil)
	poll.Wait(t, 10*time.Second, "every message of the finished games", func() bool { return caughtUp(c, want) })
	c.checkProblems()
	tl := c.tally(want)
	t.Logf("discovered games: %d subjects, %d received, %d lost, %d duplicated", tl.subjects, tl.received, tl.lost, tl.dups)
	if tl.subjects == 0 || tl.received == 0 {
		t.Errorf("nothing of the finished games was received: %+v", tl)
	}
	if tl.lost != 0 || tl.dups != 0 {
		t.Errorf("%d lost %v, %d duplicated", tl.lost, tl.lostBelow, tl.dups)
	}
	if n := testutil.ToFloat64(e.m.DiscoveredFixtures); n < 4 {
		t.Errorf("datacore_discovered_fixtures = %v, want at least 4", n)
	}
}

// TestDiscoverReadsEveryPageAndReusesToken lists two organizations whose
// window holds several pages of games: every game is followed, and one REST
// token serves every listing. It logs the calls per poll.
func TestDiscoverReadsEveryPageAndReusesToken(t *testing.T) {
	const (
		pageSize = 2
		ahead    = 5 * time.Second
	)
	orgs := []string{"o1", "o2"}
	e := newEnv(t, envOptions{
		sim: sim.Options{
			Organizations: orgs,
			RESTPageSize:  pageSize,
			// Games -3 to -1 play, 0 to 4 start within the window from the
			// first poll: 8 games, 4 pages per organization.
			Schedule: sim.Schedule{Every: time.Second, Lead: time.Second, Length: time.Minute, Past: 3},
			Feed:     sim.Feed{Rate: 2},
		},
		configure: discoveryConfig(orgs, time.Second, ahead),
	})
	ok := e.m.DiscoveryRuns.WithLabelValues("ok")
	poll.Wait(t, 15*time.Second, "4 successful polls", func() bool { return testutil.ToFloat64(ok) >= 4 })
	st := e.emu.Stats()
	runs := testutil.ToFloat64(ok)
	subs := discovered(t, e)
	for _, org := range orgs {
		for n := -3; n <= 4; n++ {
			if _, ok := subs[gameID(org, n)]; !ok {
				t.Errorf("game %d of %s, in the window, is not followed", n, org)
			}
		}
	}
	for id := range subs {
		if strings.HasSuffix(id, ":game:-4") {
			t.Errorf("%s followed: the emulator has no such game", id)
		}
	}
	calls, tokens := st.RESTCalls[http.StatusOK], st.TokenCalls[http.StatusOK]
	perPoll := float64(calls) / runs / float64(len(orgs))
	t.Logf("%v successful polls of %d organizations: %d REST calls (%.1f pages per organization per poll at %d rows a page), %d token calls, %d REST tokens issued; all REST answers %v",
		runs, len(orgs), calls, perPoll, pageSize, tokens, st.RESTTokens, st.RESTCalls)
	// What the same counts imply at the defaults for 2 organizations with 50
	// fixtures a day each: the listing window (Lookback + Ahead) holds about
	// 26 fixtures, one page at 100 rows; the token lasts an hour.
	const perDay, rowsPerPage = 50, 100
	window := discovery.DefaultLookback + discovery.DefaultAhead
	rows := perDay * window.Hours() / 24
	pages := int(rows+rowsPerPage-1) / rowsPerPage
	polls := time.Hour / discovery.DefaultInterval
	t.Logf("at the defaults (interval %s, window %s, %d rows a page), 2 organizations with %d fixtures a day: %.0f rows, %d page(s) a listing, %d REST calls an hour, and about 1 token call an hour (one token for both organizations, kept until shortly before its 1 h expiry; here %d for %d listing calls)",
		discovery.DefaultInterval, window, rowsPerPage, perDay, rows, pages, int(polls)*2*pages, tokens, calls)
	// A poll in progress may have made calls that no run counts yet: the
	// ratio is a lower bound.
	if perPoll < 4 {
		t.Errorf("%.1f listing calls per organization per poll, want at least 4 (8 games in pages of 2)", perPoll)
	}
	if tokens < 1 || tokens > 2 {
		t.Errorf("%d token calls for %d listing calls, want 1 (or 2)", tokens, calls)
	}
	if len(st.TokenCalls) != 1 || len(st.RESTCalls) != 1 {
		t.Errorf("answers other than 200: token %v, REST %v", st.TokenCalls, st.RESTCalls)
	}
}

// TestDiscoverAdminDeleteSticks deletes a discovered fixture over the admin
// API: the next polls, which still list it in the window, do not follow it again.
func TestDiscoverAdminDeleteSticks(t *testing.T) {
	const org = "o1"
	e := newEnv(t, envOptions{
		sim: sim.Options{
			Organizations: []string{org},
			Schedule:      sim.Schedule{Every: 2 * time.Second, Lead: time.Second, Length: time.Minute, Past: 1},
			Feed:          sim.Feed{Rate: 5},
		},
		configure: discoveryConfig([]string{org}, time.Second, 2*time.Second),
	})
	id := gameID(org, 0)
	poll.Wait(t, 10*time.Second, "game 0 to be discovered", func() bool {
		_, ok := discovered(t, e)[id]
		return ok
	})
	if code, body := e.do(http.MethodDelete, "/v1/fixtures/"+id, testAdminToken); code/100 != 2 {
		t.Fatalf("DELETE %s = %d %s", id, code, body)
	}
	ok := e.m.DiscoveryRuns.WithLabelValues("ok")
	after := testutil.ToFloat64(ok)
	poll.Wait(t, 10*time.Second, "3 more successful polls", func() bool {
		if _, back := discovered(t, e)[id]; back {
			t.Fatalf("%s followed again after the admin DELETE", id)
		}
		return testutil.ToFloat64(ok) >= after+3
	})
	subs := discovered(t, e)
	if _, back := subs[id]; back {
		t.Fatalf("%s followed again after the admin DELETE", id)
	}
	// Discovery still works for the other games.
	for _, n := range []int{-1, 1} {
		if _, ok := subs[gameID(org, n)]; !ok {
			t.Errorf("game %d is not followed", n)
		}
	}
}

// TestDiscoverSurvivesRESTFaults makes the REST API answer 500, then 429
// with Retry-After, then nothing but 401: nothing followed is unfollowed,
// games are discovered again once the faults stop, and the refused token
// shows in /readyz and /v1/discovery.
func TestDiscoverSurvivesRESTFaults(t *testing.T) {
	const org = "o1"
	e := newEnv(t, envOptions{
		sim: sim.Options{
			Organizations: []string{org},
			Schedule:      sim.Schedule{Every: 2 * time.Second, Lead: 2 * time.Second, Length: time.Minute, Past: 1},
			Feed:          sim.Feed{Rate: 5},
		},
		configure: discoveryConfig([]string{org}, time.Second, 2*time.Second),
	})
	poll.Wait(t, 10*time.Second, "games -1 and 0 to be discovered", func() bool {
		subs := discovered(t, e)
		_, a := subs[gameID(org, -1)]
		_, b := subs[gameID(org, 0)]
		return a && b
	})
	before := discovered(t, e)
	kept := func() {
		t.Helper()
		subs := discovered(t, e)
		for id := range before {
			if _, ok := subs[id]; !ok {
				t.Fatalf("%s unfollowed during REST faults", id)
			}
		}
	}
	runs := func(outcome string) float64 { return testutil.ToFloat64(e.m.DiscoveryRuns.WithLabelValues(outcome)) }

	e.emu.SetFaults(sim.Faults{REST500: 1})
	poll.Wait(t, 10*time.Second, "2 polls failing with 500", func() bool { kept(); return runs("server_error") >= 2 })
	e.emu.SetFaults(sim.Faults{REST429: 1, RetryAfter: time.Second})
	poll.Wait(t, 15*time.Second, "a poll failing with 429", func() bool { kept(); return runs("rate_limited") >= 1 })
	if code, body := e.do(http.MethodGet, "/readyz", ""); code != http.StatusOK {
		t.Errorf("/readyz during transient REST faults = %d %s, want 200", code, body)
	}
	e.emu.SetFaults(sim.Faults{})
	okBefore := runs("ok")
	// The poll follows what it found, then counts itself: wait for both.
	poll.Wait(t, 15*time.Second, "a new game discovered after the faults, and the poll counted ok", func() bool {
		kept()
		if runs("ok") <= okBefore {
			return false
		}
		for id := range discovered(t, e) {
			if _, ok := before[id]; !ok {
				return true
			}
		}
		return false
	})

	// A token that the REST API refuses whatever is tried is permanent.
	e.emu.SetFaults(sim.Faults{REST401: 1})
	var reason string
	poll.Wait(t, 15*time.Second, "/readyz to report the refused listing", func() bool {
		kept()
		code, body := e.do(http.MethodGet, "/readyz", "")
		reason = body
		// New streams connecting make it 503 too, for a moment.
		return code == http.StatusServiceUnavailable && strings.Contains(body, "discovery:")
	})
	if !strings.Contains(reason, "discovery: listing organization o1") || !strings.Contains(reason, "(401)") {
		t.Errorf("/readyz reason = %s, want the listing's 401", reason)
	}
	code, body := e.do(http.MethodGet, "/v1/discovery", "")
	var st discovery.Status
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/discovery = %d %s (%v)", code, body, err)
	}
	if !strings.Contains(st.LastError, "(401)") || st.LastListingAt == nil || st.NextPollAt == nil {
		t.Errorf("/v1/discovery = %s, want lastError with the 401, a last listing and a next poll", body)
	}
	if n := runs("unauthorized"); n < 1 {
		t.Errorf("discovery_runs_total{outcome=unauthorized} = %v", n)
	}
	kept()
	st2 := e.emu.Stats()
	t.Logf("REST answers %v, token answers %v, runs ok %v server_error %v rate_limited %v unauthorized %v; /readyz: %s",
		st2.RESTCalls, st2.TokenCalls, runs("ok"), runs("server_error"), runs("rate_limited"), runs("unauthorized"), strings.TrimSpace(reason))
}
