package sim

import (
	"encoding/json"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Fixture status values of the REST listing and of status messages, besides
// StatusInProgress, StatusFinished and StatusConfirmed.
const (
	StatusScheduled = "SCHEDULED"
	StatusWarmUp    = "WARM_UP"
)

const (
	restPrefix      = "/rest/v1"
	restTimeLayout  = "2006-01-02T15:04:05"
	restLimitMax    = 1000
	restLimitDflt   = 10
	gameIDPrefix    = "sim:org:"
	gameIDInfix     = ":game:"
	venueIDInfix    = ":venue:"
	defaultHorizon  = 10 // games after now listed when toTimeUTC is absent
	statusHeartbeat = time.Second
)

// restToken is one REST bearer token the token endpoint issued.
type restToken struct {
	orgs    []string
	expires time.Time
}

type tokenRequest struct {
	credentials
	Sport        string `json:"sport"`
	Organization struct {
		ID []string `json:"id"`
	} `json:"organization"`
}

type tokenData struct {
	Token     string `json:"token"`
	TokenType string `json:"tokenType"`
	ExpiresIn int64  `json:"expiresIn"`
}

// RESTURL returns the REST API base, e.g. "http://127.0.0.1:PORT/rest/v1";
// listings are under {RESTURL}/{sport}/o/{organizationId}/fixtures.
func (s *Server) RESTURL() string {
	return "http://" + s.hostPort() + restPrefix
}

// RevokeRESTTokens forgets every REST token issued so far: the REST API
// answers 401 to them, as after a revocation.
func (s *Server) RevokeRESTTokens() {
	s.mu.Lock()
	clear(s.restTokens)
	s.mu.Unlock()
}

// handleToken issues a REST token for the organizations of the body.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	count := s.stats.tokenStatus
	if s.accessFaultTo(w, r, count) {
		return
	}
	var req tokenRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil || json.Unmarshal(body, &req) != nil {
		s.writeErrorCounted(w, &apiError{http.StatusBadRequest, "body is not a JSON object"}, count)
		return
	}
	if !s.authorized(req.credentials) {
		s.writeErrorCounted(w, &apiError{http.StatusUnauthorized, "invalid credentials"}, count)
		return
	}
	if aerr := s.checkSport(req.Sport); aerr != nil {
		s.writeErrorCounted(w, aerr, count)
		return
	}
	orgs := req.Organization.ID
	if len(orgs) == 0 {
		s.writeErrorCounted(w, &apiError{http.StatusBadRequest, "organization.id is required"}, count)
		return
	}
	for _, org := range orgs {
		if !slices.Contains(s.opts.Organizations, org) {
			s.writeErrorCounted(w, &apiError{http.StatusForbidden, "organization " + strconv.Quote(org) + " is not granted to this customer"}, count)
			return
		}
	}
	ttl := int64((s.opts.RESTTokenTTL + time.Second - 1) / time.Second)
	tok := randomHex(24)
	s.mu.Lock()
	now := s.now()
	for k, t := range s.restTokens {
		if !now.Before(t.expires) {
			delete(s.restTokens, k)
		}
	}
	s.restTokens[tok] = &restToken{orgs: slices.Clone(orgs), expires: now.Add(time.Duration(ttl) * time.Second)}
	s.mu.Unlock()
	s.stats.restTokens.Add(1)
	s.log.Info("rest token issued", "organizations", len(orgs), "expires_in", ttl)
	s.writeJSONCounted(w, http.StatusOK, map[string]any{
		"data": tokenData{Token: tok, TokenType: "bearer", ExpiresIn: ttl},
	}, count)
}

// restFixture is one row of a listing.
type restFixture struct {
	FixtureID      string `json:"fixtureId"`
	Status         string `json:"status"`
	StartTimeUTC   string `json:"startTimeUTC"`
	VenueID        string `json:"venueId,omitempty"`
	OrganizationID string `json:"organizationId"`
	Name           string `json:"name"`
}

type restLinks struct {
	Self     string `json:"self"`
	Next     string `json:"next,omitempty"`
	Previous string `json:"previous,omitempty"`
}

type restMeta struct {
	Count  int `json:"count"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

type restListing struct {
	Meta  restMeta      `json:"meta"`
	Links restLinks     `json:"links"`
	Data  []restFixture `json:"data"`
}

// handleFixtures lists an organization's games.
func (s *Server) handleFixtures(w http.ResponseWriter, r *http.Request) {
	count := s.stats.restStatus
	if s.restFault(w, count) {
		return
	}
	org := r.PathValue("org")
	if !s.bearerCovers(r.Header.Get("Authorization"), org) {
		s.writeErrorCounted(w, &apiError{http.StatusUnauthorized, "missing, unknown or expired token, or one not covering this organization"}, count)
		return
	}
	if !strings.EqualFold(r.PathValue("sport"), s.opts.Sport) {
		s.writeErrorCounted(w, &apiError{http.StatusNotFound, "sport " + strconv.Quote(r.PathValue("sport")) + " not found"}, count)
		return
	}
	q := r.URL.Query()
	from, to, aerr := parseWindow(q)
	limit, offset := restLimitDflt, 0
	if aerr == nil {
		limit, offset, aerr = parsePaging(q)
	}
	if aerr != nil {
		s.writeErrorCounted(w, aerr, count)
		return
	}
	if ps := s.opts.RESTPageSize; ps > 0 {
		limit = min(limit, ps)
	}

	now := s.now()
	sc := s.opts.Schedule
	lo, hi := -sc.Past, s.gameIndexAtOrBefore(now.Add(defaultHorizon*sc.Every))
	if !from.IsZero() {
		lo = max(lo, s.gameIndexAtOrBefore(from.Add(-time.Nanosecond))+1)
	}
	if !to.IsZero() {
		hi = s.gameIndexAtOrBefore(to)
	}
	total := max(hi-lo+1, 0)
	out := restListing{Meta: restMeta{Count: total, Limit: limit, Offset: offset}, Data: []restFixture{}}
	for n := lo + offset; n <= hi && n < lo+offset+limit; n++ {
		out.Data = append(out.Data, s.gameRow(org, n, now))
	}
	link := func(off int) string {
		v := url.Values{}
		for _, k := range []string{"fromTimeUTC", "toTimeUTC"} {
			if q.Has(k) {
				v.Set(k, q.Get(k))
			}
		}
		v.Set("limit", strconv.Itoa(limit))
		v.Set("offset", strconv.Itoa(off))
		return "http://" + r.Host + r.URL.Path + "?" + v.Encode()
	}
	out.Links.Self = link(offset)
	if offset+limit < total {
		out.Links.Next = link(offset + limit)
	}
	if offset > 0 {
		out.Links.Previous = link(max(offset-limit, 0))
	}
	s.writeJSONCounted(w, http.StatusOK, out, count)
}

func parseWindow(q url.Values) (from, to time.Time, aerr *apiError) {
	parse := func(k string) (time.Time, *apiError) {
		v := q.Get(k)
		if v == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(restTimeLayout, v)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, v); err != nil {
				return time.Time{}, &apiError{http.StatusBadRequest, k + " is not an ISO-8601 time like 2026-11-30T18:00:00"}
			}
		}
		return t.UTC(), nil
	}
	if from, aerr = parse("fromTimeUTC"); aerr != nil {
		return from, to, aerr
	}
	to, aerr = parse("toTimeUTC")
	return from, to, aerr
}

func parsePaging(q url.Values) (limit, offset int, aerr *apiError) {
	limit = restLimitDflt
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > restLimitMax {
			return 0, 0, &apiError{http.StatusBadRequest, "limit must be between 1 and 1000"}
		}
		limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, &apiError{http.StatusBadRequest, "offset must be a non-negative integer"}
		}
		offset = n
	}
	return limit, offset, nil
}

// bearerCovers reports whether the Authorization header holds a live REST
// token that covers org.
func (s *Server) bearerCovers(header, org string) bool {
	tok, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || tok == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.restTokens[tok]
	return t != nil && s.now().Before(t.expires) && slices.Contains(t.orgs, org)
}

// restFault answers a REST call with a fault when the dice say so.
func (s *Server) restFault(w http.ResponseWriter, count func(int)) bool {
	f := s.Faults()
	x := mrand.Float64()
	switch {
	case x < f.REST500:
		s.writeErrorCounted(w, &apiError{http.StatusInternalServerError, "internal server error"}, count)
	case x < f.REST500+f.REST429:
		secs := int((f.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.writeErrorCounted(w, &apiError{http.StatusTooManyRequests, "rate exceeded"}, count)
	case x < f.REST500+f.REST429+f.REST401:
		s.writeErrorCounted(w, &apiError{http.StatusUnauthorized, "token is not valid"}, count)
	default:
		return false
	}
	return true
}

// gameStart returns the start time of game n (of any organization).
func (s *Server) gameStart(n int) time.Time {
	sc := s.opts.Schedule
	return s.epoch.Add(sc.Lead + time.Duration(n)*sc.Every)
}

// gameIndexAtOrBefore returns the highest n whose game starts at or before t.
func (s *Server) gameIndexAtOrBefore(t time.Time) int {
	d := t.Sub(s.epoch.Add(s.opts.Schedule.Lead))
	every := s.opts.Schedule.Every
	n := d / every
	if d%every != 0 && d < 0 {
		n--
	}
	return int(n)
}

// gameStatus returns the status of a game that starts at start, at now.
func (s *Server) gameStatus(start, now time.Time) string {
	sc := s.opts.Schedule
	switch d := now.Sub(start); {
	case d < -sc.WarmUp:
		return StatusScheduled
	case d < 0:
		return StatusWarmUp
	case d < sc.Length:
		return StatusInProgress
	case d < sc.Length+sc.FinalAfter:
		return StatusFinished
	}
	return StatusConfirmed
}

func gameID(org string, n int) string { return gameIDPrefix + org + gameIDInfix + strconv.Itoa(n) }

func venueID(org string, n int) string {
	return gameIDPrefix + org + venueIDInfix + strconv.Itoa((n%2+2)%2+1)
}

func (s *Server) gameRow(org string, n int, now time.Time) restFixture {
	start := s.gameStart(n)
	row := restFixture{
		FixtureID:      gameID(org, n),
		Status:         s.gameStatus(start, now),
		StartTimeUTC:   start.UTC().Format(restTimeLayout),
		OrganizationID: org,
		Name:           org + " game " + strconv.Itoa(n),
	}
	if s.opts.Schedule.Venues {
		row.VenueID = venueID(org, n)
	}
	return row
}

// scheduledGame parses a scheduled game's fixture ID and returns its start.
func (s *Server) scheduledGame(id string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(id, gameIDPrefix)
	if !ok {
		return time.Time{}, false
	}
	i := strings.LastIndex(rest, gameIDInfix)
	if i < 0 {
		return time.Time{}, false
	}
	org, num := rest[:i], rest[i+len(gameIDInfix):]
	n, err := strconv.Atoi(num)
	if err != nil || strconv.Itoa(n) != num || n < -s.opts.Schedule.Past || !slices.Contains(s.opts.Organizations, org) {
		return time.Time{}, false
	}
	return s.gameStart(n), true
}

// scheduledVenue reports whether id is the venue of scheduled games.
func (s *Server) scheduledVenue(id string) bool {
	if !s.opts.Schedule.Venues {
		return false
	}
	rest, ok := strings.CutPrefix(id, gameIDPrefix)
	if !ok {
		return false
	}
	i := strings.LastIndex(rest, venueIDInfix)
	if i < 0 {
		return false
	}
	org, num := rest[:i], rest[i+len(venueIDInfix):]
	return (num == "1" || num == "2") && slices.Contains(s.opts.Organizations, org)
}

// scheduledLocked reports whether id is a scheduled game (kind fixture)
// or a venue of scheduled games (kind venue).
func (s *Server) scheduledLocked(kind, id string) bool {
	if kind == kindVenue {
		return s.scheduledVenue(id)
	}
	_, ok := s.scheduledGame(id)
	return ok
}
