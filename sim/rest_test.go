package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"
)

const testOrg = "org-a"

// fixedClock returns a clock standing still on a whole second, so that the
// schedule's origin (the emulator's start) is the clock's time exactly.
func fixedClock() *clock {
	return &clock{t: time.Now().UTC().Truncate(time.Second)}
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func tokenBody(orgs ...string) map[string]any {
	return map[string]any{
		"sport": "basketball", "organization": map[string]any{"id": orgs},
		"credentialId": testID, "credentialSecret": testSecret,
	}
}

// restToken gets a REST token for orgs and fails the test unless it gets one.
func restTokenFor(t testing.TB, s *Server, orgs ...string) string {
	t.Helper()
	var out struct {
		Data tokenData `json:"data"`
	}
	if resp := post(t, s, "/oauth2/rest/token", tokenBody(orgs...), &out); resp.StatusCode != http.StatusOK {
		t.Fatalf("token: status %d", resp.StatusCode)
	}
	return out.Data.Token
}

// getList sends a listing call to u with token (none when empty) and decodes
// the answer when it is 200.
func getList(t testing.TB, u, token string) (*http.Response, restListing) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("get %s: %v", u, err)
	}
	defer resp.Body.Close()
	var l restListing
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
			t.Fatalf("decode listing: %v", err)
		}
	}
	return resp, l
}

func listURL(s *Server, org string, q url.Values) string {
	u := s.RESTURL() + "/basketball/o/" + org + "/fixtures"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

func restTime(t time.Time) string { return t.UTC().Format(restTimeLayout) }

func TestRESTToken(t *testing.T) {
	s := startSim(t, Options{
		UserIdentityToken: "user-token", ApplicationID: "app",
		Organizations: []string{testOrg, "org-b"}, RESTTokenTTL: 90 * time.Second,
	})
	tests := []struct {
		name       string
		body       any
		wantStatus int
	}{
		{name: "application credentials", body: tokenBody(testOrg), wantStatus: 200},
		{name: "two organizations", body: tokenBody(testOrg, "org-b"), wantStatus: 200},
		{name: "user credentials", body: map[string]any{
			"sport": "basketball", "organization": map[string]any{"id": []string{testOrg}},
			"userIdentityToken": "user-token", "applicationId": "app",
		}, wantStatus: 200},
		{name: "wrong secret", body: func() map[string]any {
			b := tokenBody(testOrg)
			b["credentialSecret"] = "nope"
			return b
		}(), wantStatus: 401},
		{name: "no credentials", body: map[string]any{"sport": "basketball", "organization": map[string]any{"id": []string{testOrg}}}, wantStatus: 401},
		{name: "body not an object", body: []string{"x"}, wantStatus: 400},
		{name: "wrong sport", body: func() map[string]any {
			b := tokenBody(testOrg)
			b["sport"] = "icehockey"
			return b
		}(), wantStatus: 400},
		{name: "no organization", body: tokenBody(), wantStatus: 400},
		{name: "organization not held", body: tokenBody(testOrg, "org-z"), wantStatus: 403},
	}
	issued := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw json.RawMessage
			resp := post(t, s, "/oauth2/rest/token", tt.body, &raw)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.wantStatus, raw)
			}
			if tt.wantStatus != 200 {
				var e errorResponse
				if err := json.Unmarshal(raw, &e); err != nil || e.Error.Message == "" {
					t.Fatalf("error body %s", raw)
				}
				return
			}
			issued++
			var out struct {
				Data tokenData `json:"data"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatal(err)
			}
			if out.Data.Token == "" || out.Data.TokenType != "bearer" || out.Data.ExpiresIn != 90 {
				t.Fatalf("token answer %s", raw)
			}
		})
	}
	st := s.Stats()
	if st.RESTTokens != uint64(issued) || st.TokenCalls[200] != uint64(issued) || st.TokenCalls[401] != 2 || st.TokenCalls[400] != 3 || st.TokenCalls[403] != 1 {
		t.Fatalf("RESTTokens = %d, TokenCalls = %v (issued %d)", st.RESTTokens, st.TokenCalls, issued)
	}
	if len(st.AccessCalls) != 0 {
		t.Fatalf("token calls counted as access calls: %v", st.AccessCalls)
	}
}

func TestRESTBearer(t *testing.T) {
	clk := fixedClock()
	s := startSim(t, Options{Now: clk.Now, Organizations: []string{testOrg, "org-b"}, RESTTokenTTL: time.Minute})
	tokA := restTokenFor(t, s, testOrg)
	tests := []struct {
		name       string
		org        string
		header     string
		before     func()
		wantStatus int
	}{
		{name: "valid", org: testOrg, header: "Bearer " + tokA, wantStatus: 200},
		{name: "missing", org: testOrg, header: "", wantStatus: 401},
		{name: "not bearer", org: testOrg, header: "Basic " + tokA, wantStatus: 401},
		{name: "unknown", org: testOrg, header: "Bearer nope", wantStatus: 401},
		{name: "other organization", org: "org-b", header: "Bearer " + tokA, wantStatus: 401},
		{name: "unknown sport", org: testOrg, header: "Bearer " + tokA, wantStatus: 404},
		{name: "still valid just before expiry", org: testOrg, header: "Bearer " + tokA,
			before: func() { clk.Advance(59 * time.Second) }, wantStatus: 200},
		{name: "expired", org: testOrg, header: "Bearer " + tokA,
			before: func() { clk.Advance(time.Second) }, wantStatus: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			u := listURL(s, tt.org, nil)
			if tt.wantStatus == 404 {
				u = s.RESTURL() + "/icehockey/o/" + tt.org + "/fixtures"
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
		})
	}

	t.Run("revoked", func(t *testing.T) {
		tok := restTokenFor(t, s, testOrg)
		if resp, _ := getList(t, listURL(s, testOrg, nil), tok); resp.StatusCode != 200 {
			t.Fatalf("fresh token: status %d", resp.StatusCode)
		}
		s.RevokeRESTTokens()
		if resp, _ := getList(t, listURL(s, testOrg, nil), tok); resp.StatusCode != 401 {
			t.Fatalf("revoked token: status %d, want 401", resp.StatusCode)
		}
	})
}

func TestRESTPaging(t *testing.T) {
	tests := []struct {
		name      string
		pageSize  int
		limit     string
		wantLimit int
	}{
		{name: "default limit", wantLimit: 10},
		{name: "page size knob caps the default", pageSize: 3, wantLimit: 3},
		{name: "page size knob caps an asked limit", pageSize: 4, limit: "1000", wantLimit: 4},
		{name: "asked limit under the knob", pageSize: 50, limit: "5", wantLimit: 5},
		{name: "one page", limit: "1000", wantLimit: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := fixedClock()
			s := startSim(t, Options{Now: clk.Now, Organizations: []string{testOrg},
				Schedule: Schedule{Every: time.Minute, Lead: 30 * time.Second}, RESTPageSize: tt.pageSize})
			tok := restTokenFor(t, s, testOrg)
			// Past 3 games, and the games up to 10 minutes from now: -3..9.
			var want []string
			for n := -3; n <= 9; n++ {
				want = append(want, gameID(testOrg, n))
			}
			q := url.Values{}
			if tt.limit != "" {
				q.Set("limit", tt.limit)
			}
			next := listURL(s, testOrg, q)
			var got []string
			var prevStart string
			pages := 0
			for next != "" {
				resp, l := getList(t, next, tok)
				if resp.StatusCode != 200 {
					t.Fatalf("page %d: status %d", pages, resp.StatusCode)
				}
				if l.Meta.Count != len(want) || l.Meta.Limit != tt.wantLimit || l.Meta.Offset != pages*tt.wantLimit {
					t.Fatalf("page %d: meta %+v", pages, l.Meta)
				}
				if len(l.Data) > tt.wantLimit || len(l.Data) == 0 {
					t.Fatalf("page %d: %d rows", pages, len(l.Data))
				}
				if (pages > 0) != (l.Links.Previous != "") || l.Links.Self == "" {
					t.Fatalf("page %d: links %+v", pages, l.Links)
				}
				for _, row := range l.Data {
					if row.StartTimeUTC < prevStart || row.OrganizationID != testOrg {
						t.Fatalf("row %+v out of order or of another organization", row)
					}
					prevStart = row.StartTimeUTC
					got = append(got, row.FixtureID)
				}
				next = l.Links.Next
				pages++
			}
			if !slices.Equal(got, want) {
				t.Fatalf("rows = %v, want %v", got, want)
			}
			if wantPages := (len(want) + tt.wantLimit - 1) / tt.wantLimit; pages != wantPages {
				t.Fatalf("pages = %d, want %d", pages, wantPages)
			}
			if st := s.Stats(); st.RESTCalls[200] != uint64(pages) {
				t.Fatalf("RESTCalls = %v, want %d answers 200", st.RESTCalls, pages)
			}
		})
	}
}

func TestRESTWindow(t *testing.T) {
	clk := fixedClock()
	epoch := clk.Now()
	s := startSim(t, Options{Now: clk.Now, Organizations: []string{testOrg},
		Schedule: Schedule{Every: time.Minute, Venues: true}})
	tok := restTokenFor(t, s, testOrg)
	at := func(d time.Duration) string { return restTime(epoch.Add(d)) }
	tests := []struct {
		name       string
		query      url.Values
		wantStatus int
		want       []int // game numbers
	}{
		{name: "both bounds", query: url.Values{"fromTimeUTC": {at(-90 * time.Second)}, "toTimeUTC": {at(150 * time.Second)}}, wantStatus: 200, want: []int{-1, 0, 1, 2}},
		{name: "bounds are inclusive", query: url.Values{"fromTimeUTC": {at(-time.Minute)}, "toTimeUTC": {at(time.Minute)}}, wantStatus: 200, want: []int{-1, 0, 1}},
		{name: "from only: up to ten games ahead", query: url.Values{"fromTimeUTC": {at(7 * time.Minute)}}, wantStatus: 200, want: []int{7, 8, 9, 10}},
		{name: "to only: from the first past game", query: url.Values{"toTimeUTC": {at(30 * time.Second)}}, wantStatus: 200, want: []int{-3, -2, -1, 0}},
		{name: "far future", query: url.Values{"fromTimeUTC": {at(100 * time.Hour)}, "toTimeUTC": {at(100*time.Hour + 2*time.Minute)}}, wantStatus: 200, want: []int{6000, 6001, 6002}},
		{name: "empty window", query: url.Values{"fromTimeUTC": {at(10 * time.Second)}, "toTimeUTC": {at(50 * time.Second)}}, wantStatus: 200, want: nil},
		{name: "window before the first game", query: url.Values{"toTimeUTC": {at(-time.Hour)}}, wantStatus: 200, want: nil},
		{name: "zone accepted", query: url.Values{"fromTimeUTC": {epoch.Format(time.RFC3339)}, "toTimeUTC": {at(0)}}, wantStatus: 200, want: []int{0}},
		{name: "bad time", query: url.Values{"fromTimeUTC": {"yesterday"}}, wantStatus: 400},
		{name: "limit zero", query: url.Values{"limit": {"0"}}, wantStatus: 400},
		{name: "limit over 1000", query: url.Values{"limit": {"1001"}}, wantStatus: 400},
		{name: "negative offset", query: url.Values{"offset": {"-1"}}, wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, l := getList(t, listURL(s, testOrg, tt.query), tok)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				return
			}
			var got []int
			for _, row := range l.Data {
				n, _ := strconv.Atoi(row.FixtureID[len(gameIDPrefix+testOrg+gameIDInfix):])
				got = append(got, n)
				if row.StartTimeUTC != at(time.Duration(n)*time.Minute) {
					t.Fatalf("game %d starts %s, want %s", n, row.StartTimeUTC, at(time.Duration(n)*time.Minute))
				}
				if row.VenueID != venueID(testOrg, n) || row.VenueID == "" {
					t.Fatalf("game %d venue %q", n, row.VenueID)
				}
			}
			if !slices.Equal(got, tt.want) || l.Meta.Count != len(tt.want) {
				t.Fatalf("games = %v (count %d), want %v", got, l.Meta.Count, tt.want)
			}
		})
	}
}

// gameStatusOf returns the listed status of game n.
func gameStatusOf(t *testing.T, s *Server, tok string, start time.Time) string {
	t.Helper()
	resp, l := getList(t, listURL(s, testOrg, url.Values{"fromTimeUTC": {restTime(start)}, "toTimeUTC": {restTime(start)}}), tok)
	if resp.StatusCode != 200 || len(l.Data) != 1 {
		t.Fatalf("status %d, %d rows", resp.StatusCode, len(l.Data))
	}
	return l.Data[0].Status
}

func TestScheduleStatusProgression(t *testing.T) {
	clk := fixedClock()
	epoch := clk.Now()
	s := startSim(t, Options{Now: clk.Now, Organizations: []string{testOrg}, RESTTokenTTL: 24 * time.Hour,
		Schedule: Schedule{Every: time.Minute, Lead: time.Minute, Length: 20 * time.Second, FinalAfter: 10 * time.Second, WarmUp: 5 * time.Second}})
	tok := restTokenFor(t, s, testOrg)
	game0 := epoch.Add(time.Minute)
	tests := []struct {
		name string
		at   time.Duration // from game 0's start
		want string
	}{
		{name: "long before", at: -time.Minute, want: StatusScheduled},
		{name: "just before warm-up", at: -5*time.Second - time.Millisecond, want: StatusScheduled},
		{name: "warm-up", at: -5 * time.Second, want: StatusWarmUp},
		{name: "start", at: 0, want: StatusInProgress},
		{name: "playing", at: 19 * time.Second, want: StatusInProgress},
		{name: "finished", at: 20 * time.Second, want: StatusFinished},
		{name: "confirmed", at: 30 * time.Second, want: StatusConfirmed},
		{name: "long after", at: time.Hour, want: StatusConfirmed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.Set(game0.Add(tt.at))
			if got := gameStatusOf(t, s, tok, game0); got != tt.want {
				t.Fatalf("status = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestScheduledGameAccess(t *testing.T) {
	clk := fixedClock()
	s := startSim(t, Options{Now: clk.Now, Organizations: []string{testOrg},
		Schedule: Schedule{Every: time.Minute, Venues: true}})
	tests := []struct {
		name       string
		path       string
		body       map[string]any
		wantStatus int
	}{
		{name: "future game", path: "/stream/fixture/access", body: fixtureBody(gameID(testOrg, 500), ScopeStatus), wantStatus: 200},
		{name: "past game", path: "/stream/fixture/access", body: fixtureBody(gameID(testOrg, -3), ScopeStatus), wantStatus: 200},
		{name: "before the first game", path: "/stream/fixture/access", body: fixtureBody(gameID(testOrg, -4), ScopeStatus), wantStatus: 404},
		{name: "organization not held", path: "/stream/fixture/access", body: fixtureBody(gameID("org-z", 1), ScopeStatus), wantStatus: 404},
		{name: "not a number", path: "/stream/fixture/access", body: fixtureBody(gameIDPrefix+testOrg+gameIDInfix+"01", ScopeStatus), wantStatus: 404},
		{name: "venue", path: "/stream/venue/access", body: map[string]any{
			"venueId": venueID(testOrg, 3), "sport": "basketball", "scopes": []string{ScopeScoreboard},
			"credentialId": testID, "credentialSecret": testSecret,
		}, wantStatus: 200},
		{name: "unknown venue", path: "/stream/venue/access", body: map[string]any{
			"venueId": gameIDPrefix + testOrg + venueIDInfix + "3", "sport": "basketball", "scopes": []string{ScopeScoreboard},
			"credentialId": testID, "credentialSecret": testSecret,
		}, wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw json.RawMessage
			if resp := post(t, s, tt.path, tt.body, &raw); resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.wantStatus, raw)
			}
		})
	}
}

// TestScheduledStreamFollowsSchedule checks that the status messages of a
// scheduled game's stream follow the schedule as the service's clock moves,
// and that play messages flow only while the game is IN_PROGRESS.
func TestScheduledStreamFollowsSchedule(t *testing.T) {
	clk := fixedClock()
	epoch := clk.Now()
	s := startSim(t, Options{Now: clk.Now, Organizations: []string{testOrg}, Feed: Feed{Rate: 200},
		Schedule: Schedule{Every: time.Minute, Lead: time.Minute, Length: 20 * time.Second, FinalAfter: 10 * time.Second, WarmUp: 5 * time.Second}})
	id := gameID(testOrg, 0)
	start := epoch.Add(time.Minute)
	g := grantOf(t, s, id, false, ScopeStatus, ScopeEvents)
	c := mustDial(t, g.URL, g.ClientID)
	c.subscribe(t, 1, topicsOf(g)...)

	steps := []struct {
		at         time.Duration // from the game's start
		want       string
		wantEvents bool // event messages arrive before the next status
	}{
		{at: -time.Minute, want: StatusScheduled},
		{at: -5 * time.Second, want: StatusWarmUp},
		{at: 0, want: StatusInProgress, wantEvents: true},
		{at: 20 * time.Second, want: StatusFinished},
		{at: 30 * time.Second, want: StatusConfirmed},
	}
	current := "" // the last status seen
	var confirmedSeq uint64
	for i, step := range steps {
		clk.Set(start.Add(step.at))
		events := 0
		for current != step.want || (step.wantEvents && events < 5) {
			m := c.next(t)
			msg, d := decode(t, m.payload)
			if msg.FixtureID != id {
				t.Fatalf("message of %q", msg.FixtureID)
			}
			if msg.Type == "event" {
				if current != StatusInProgress {
					t.Fatalf("event while %q", current)
				}
				events++
				continue
			}
			if d.Status == nil {
				t.Fatalf("status message without data.status: %s", m.payload)
			}
			if got := d.Status.Fixture; got != current && got != step.want {
				t.Fatalf("step %d: status %s after %q, want %s", i, got, current, step.want)
			}
			current = d.Status.Fixture
			if current == StatusConfirmed {
				confirmedSeq = d.Seq
			}
		}
	}
	// CONFIRMED is the stream's last message.
	if got := s.LastSeq(kindFixture, id, ScopeStatus); got != confirmedSeq {
		t.Fatalf("last status seq = %d, CONFIRMED was %d", got, confirmedSeq)
	}
	if s.LastSeq(kindFixture, id, ScopeEvents) == 0 {
		t.Fatal("no event was published")
	}
}

func TestRESTFaults(t *testing.T) {
	s := startSim(t, Options{Organizations: []string{testOrg}})
	tok := restTokenFor(t, s, testOrg)
	tests := []struct {
		name           string
		faults         Faults
		wantStatus     int
		wantRetryAfter string
		wantTokenCall  int
	}{
		{name: "500", faults: Faults{REST500: 1}, wantStatus: 500, wantTokenCall: 200},
		{name: "429", faults: Faults{REST429: 1, RetryAfter: 2 * time.Second}, wantStatus: 429, wantRetryAfter: "2", wantTokenCall: 200},
		{name: "401 with a valid token", faults: Faults{REST401: 1}, wantStatus: 401, wantTokenCall: 200},
		{name: "access faults hit the token endpoint, not listings", faults: Faults{Access500: 1}, wantStatus: 200, wantTokenCall: 500},
		{name: "none", faults: Faults{}, wantStatus: 200, wantTokenCall: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetFaults(tt.faults)
			before := s.Stats().RESTCalls[tt.wantStatus]
			resp, l := getList(t, listURL(s, testOrg, nil), tok)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("Retry-After"); got != tt.wantRetryAfter {
				t.Fatalf("Retry-After = %q, want %q", got, tt.wantRetryAfter)
			}
			if tt.wantStatus == 200 && l.Meta.Count == 0 {
				t.Fatal("empty listing")
			}
			if after := s.Stats().RESTCalls[tt.wantStatus]; after != before+1 {
				t.Fatalf("RESTCalls[%d] went %d -> %d", tt.wantStatus, before, after)
			}
			b, _ := json.Marshal(tokenBody(testOrg))
			tr, err := http.Post(s.APIURL()+"/oauth2/rest/token", "application/json", bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			tr.Body.Close()
			if tr.StatusCode != tt.wantTokenCall {
				t.Fatalf("token call: status %d, want %d", tr.StatusCode, tt.wantTokenCall)
			}
		})
	}
	t.Run("shares are clamped", func(t *testing.T) {
		s.SetFaults(Faults{REST500: 3, REST429: 3})
		if f := s.Faults(); f.REST500+f.REST429 > 1+1e-9 || f.REST500 != 0.5 {
			t.Fatalf("faults %+v", f)
		}
	})
}

func TestScheduleOptions(t *testing.T) {
	tests := []struct {
		name    string
		o       Options
		wantErr bool
		check   func(Schedule) error
	}{
		{name: "defaults", o: Options{}, check: func(sc Schedule) error {
			if sc.Every != time.Hour || sc.Length != 30*time.Minute || sc.FinalAfter != 3*time.Minute || sc.WarmUp != 5*time.Minute || sc.Past != 3 {
				return fmt.Errorf("%+v", sc)
			}
			return nil
		}},
		{name: "length from the game length", o: Options{Feed: Feed{GameLength: 10 * time.Second}, Schedule: Schedule{Every: time.Minute}}, check: func(sc Schedule) error {
			if sc.Length != 10*time.Second || sc.FinalAfter != time.Second || sc.WarmUp != 6*time.Second {
				return fmt.Errorf("%+v", sc)
			}
			return nil
		}},
		{name: "no past games", o: Options{Schedule: Schedule{Past: -1}}, check: func(sc Schedule) error {
			if sc.Past != 0 {
				return fmt.Errorf("Past = %d", sc.Past)
			}
			return nil
		}},
		{name: "sub-second every", o: Options{Schedule: Schedule{Every: 1500 * time.Millisecond}}, wantErr: true},
		{name: "sub-second lead", o: Options{Schedule: Schedule{Lead: time.Millisecond}}, wantErr: true},
		{name: "negative length", o: Options{Schedule: Schedule{Length: -time.Second}}, wantErr: true},
		{name: "empty organization", o: Options{Organizations: []string{""}}, wantErr: true},
		{name: "organization with a slash", o: Options{Organizations: []string{"a/b"}}, wantErr: true},
		{name: "negative page size", o: Options{RESTPageSize: -1}, wantErr: true},
		{name: "REST shares over 1", o: Options{Faults: Faults{REST500: 0.6, REST401: 0.6}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			err := o.setDefaults()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %t", err, tt.wantErr)
			}
			if err == nil && tt.check != nil {
				if err := tt.check(o.Schedule); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
