package sim

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	kindFixture = "fixture"
	kindVenue   = "venue"

	amzDateLayout = "20060102T150405Z"
	maxBody       = 1 << 20
)

// grant is one answer of the access API: a client id, a signed URL and topics.
type grant struct {
	token    string // X-Amz-Security-Token: finds the grant from its URL
	clientID string
	url      string
	topics   []topicGrant
	allowed  map[string]bool // topic -> may subscribe
	streams  []*stream       // streams the topics belong to (flood pacing)
	expires  time.Time
	conns    int // open MQTT sessions; guarded by Server.mu
}

// topicGrant is one entry of the answer's topics.
type topicGrant struct {
	Topic      string `json:"topic"`
	Scope      string `json:"scope"`
	Permission string `json:"permission"`
}

// alias is one topic name of a stream's scope, shared by the grants that name it.
type alias struct {
	stream *stream
	scope  string
	refs   int // live grants naming it
}

type credentials struct {
	CredentialID      string `json:"credentialId"`
	CredentialSecret  string `json:"credentialSecret"`
	UserIdentityToken string `json:"userIdentityToken"`
	ApplicationID     string `json:"applicationId"`
}

type accessRequest struct {
	credentials
	Credentials *credentials `json:"credentials"` // the specific endpoint may nest them
	FixtureID   string       `json:"fixtureId"`
	VenueID     string       `json:"venueId"`
	Sport       string       `json:"sport"`
	Scopes      []string     `json:"scopes"`
	Topics      []string     `json:"topics"`
	IncludePort bool         `json:"includePort"`
}

type accessResponse struct {
	Data accessData     `json:"data"`
	Meta map[string]any `json:"meta"`
}

type accessData struct {
	URL      string       `json:"url"`
	ClientID string       `json:"clientId"`
	Topics   []topicGrant `json:"topics"`
}

// apiError is an answer the access API gives instead of a grant.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func (s *Server) handleAccess(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.accessFault(w, r) {
			return
		}
		req, aerr := s.readAccessRequest(r)
		if aerr == nil {
			aerr = s.checkSport(req.Sport)
		}
		id := req.FixtureID
		if kind == kindVenue {
			id = req.VenueID
		}
		if aerr == nil && id == "" {
			aerr = &apiError{http.StatusBadRequest, kind + "Id is required"}
		}
		if aerr == nil {
			aerr = s.checkScopes(req.Scopes)
		}
		if aerr != nil {
			s.writeError(w, aerr)
			return
		}
		g, aerr := s.issueGrant(kind, id, req.Scopes, req.IncludePort, r.Host)
		if aerr != nil {
			s.writeError(w, aerr)
			return
		}
		s.writeGrant(w, g)
	}
}

// handleSpecific grants topics named by an earlier grant (of any client),
// each with the scope it was first granted for.
func (s *Server) handleSpecific(w http.ResponseWriter, r *http.Request) {
	if s.accessFault(w, r) {
		return
	}
	req, aerr := s.readAccessRequest(r)
	if aerr == nil && len(req.Topics) == 0 {
		aerr = &apiError{http.StatusBadRequest, "topics are required"}
	}
	if aerr == nil && len(req.Scopes) > 0 {
		aerr = s.checkScopes(req.Scopes)
	}
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	g, aerr := s.issueSpecific(req.Topics, req.Scopes, req.IncludePort, r.Host)
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	s.writeGrant(w, g)
}

func (s *Server) readAccessRequest(r *http.Request) (accessRequest, *apiError) {
	var req accessRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return req, &apiError{http.StatusBadRequest, "unreadable body"}
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, &apiError{http.StatusBadRequest, "body is not a JSON object"}
	}
	if req.Credentials != nil {
		req.credentials = *req.Credentials
	}
	if !s.authorized(req.credentials) {
		return req, &apiError{http.StatusUnauthorized, "invalid credentials"}
	}
	return req, nil
}

// authorized checks either kind of credentials. When the server was given
// neither kind, any non-empty pair is accepted.
func (s *Server) authorized(c credentials) bool {
	eq := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	o := s.opts
	appSet, userSet := o.CredentialID != "", o.UserIdentityToken != ""
	if !appSet && !userSet {
		return (c.CredentialID != "" && c.CredentialSecret != "") || (c.UserIdentityToken != "" && c.ApplicationID != "")
	}
	if appSet && c.CredentialID != "" && eq(c.CredentialID, o.CredentialID) && eq(c.CredentialSecret, o.CredentialSecret) {
		return true
	}
	return userSet && c.UserIdentityToken != "" && eq(c.UserIdentityToken, o.UserIdentityToken) && eq(c.ApplicationID, o.ApplicationID)
}

func (s *Server) checkSport(sport string) *apiError {
	if sport == "" {
		return &apiError{http.StatusBadRequest, "sport is required"}
	}
	if !strings.EqualFold(sport, s.opts.Sport) {
		return &apiError{http.StatusBadRequest, "sport " + strconv.Quote(sport) + " is not available"}
	}
	return nil
}

// checkScopes fails the whole call when a scope is unknown (400) or not held (403).
func (s *Server) checkScopes(scopes []string) *apiError {
	if len(scopes) == 0 {
		return &apiError{http.StatusBadRequest, "scopes are required"}
	}
	for _, sc := range scopes {
		if !knownScope(sc) {
			return &apiError{http.StatusBadRequest, "unknown scope " + strconv.Quote(sc)}
		}
		if !s.holds(sc) {
			return &apiError{http.StatusForbidden, "scope " + strconv.Quote(sc) + " is not granted to this customer"}
		}
	}
	return nil
}

func (s *Server) holds(scope string) bool {
	return slices.Contains(s.opts.Scopes, scope)
}

// accessFault answers the call with a fault when the dice say so, after the
// slow delay if any. It reports whether the call was answered.
func (s *Server) accessFault(w http.ResponseWriter, r *http.Request) bool {
	return s.accessFaultTo(w, r, s.stats.accessStatus)
}

// accessFaultTo is accessFault counting its answer's status with count.
func (s *Server) accessFaultTo(w http.ResponseWriter, r *http.Request, count func(int)) bool {
	f := s.Faults()
	if f.AccessSlow > 0 && mrand.Float64() < f.AccessSlow {
		t := time.NewTimer(f.SlowDelay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	x := mrand.Float64()
	switch {
	case x < f.Access500:
		s.writeErrorCounted(w, &apiError{http.StatusInternalServerError, "internal server error"}, count)
	case x < f.Access500+f.Access429:
		secs := int((f.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.writeErrorCounted(w, &apiError{http.StatusTooManyRequests, "rate exceeded"}, count)
	case x < f.Access500+f.Access429+f.AccessGarbage:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"data":{"url":"ws://`)
		count(http.StatusOK)
	default:
		return false
	}
	return true
}

func (s *Server) writeError(w http.ResponseWriter, e *apiError) {
	s.writeErrorCounted(w, e, s.stats.accessStatus)
}

// writeErrorCounted answers e, counting its status with count.
func (s *Server) writeErrorCounted(w http.ResponseWriter, e *apiError, count func(int)) {
	s.log.Debug("call refused", "status", e.status, "reason", e.msg)
	s.writeJSONCounted(w, e.status, map[string]any{"error": map[string]string{"message": e.msg}}, count)
}

func (s *Server) writeGrant(w http.ResponseWriter, g *grant) {
	s.stats.grants.Add(1)
	s.log.Info("grant issued", "client", g.clientID, "topics", len(g.topics), "expires", g.expires)
	s.writeJSON(w, http.StatusOK, accessResponse{
		Data: accessData{URL: g.url, ClientID: g.clientID, Topics: g.topics},
		Meta: map[string]any{"requestId": randomHex(8), "expiresAt": g.expires.UTC().Format(time.RFC3339)},
	})
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	s.writeJSONCounted(w, status, v, s.stats.accessStatus)
}

// writeJSONCounted answers v as JSON, counting status with count.
func (s *Server) writeJSONCounted(w http.ResponseWriter, status int, v any, count func(int)) {
	b, _ := json.Marshal(v)
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat)) // the service's clock, as ClockOffset moves it
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	count(status)
}

// issueGrant grants one new topic per scope of a fixture or venue.
func (s *Server) issueGrant(kind, id string, scopes []string, includePort bool, host string) (*grant, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	known := s.fixtures
	if kind == kindVenue {
		known = s.venues
	}
	if !known[id] && !s.scheduledLocked(kind, id) {
		return nil, &apiError{http.StatusNotFound, kind + " " + strconv.Quote(id) + " not found"}
	}
	s.collectGrants()
	st := s.streamLocked(kind, id)
	org := "sim00"
	if !s.opts.StableTopics {
		org = randomOrg()
	}
	g := s.newGrant(includePort, host)
	if !s.faults.WildcardOnly {
		for _, sc := range scopes {
			topic := topicName(s.opts.Sport, kind, org, id, sc)
			if g.allowed[topic] {
				continue // the same scope twice
			}
			s.addAlias(g, st, topic, sc)
		}
	}
	if s.faults.WildcardOnly || s.faults.WildcardExtra {
		addWildcards(g, s.opts.Sport, kind, id, scopes, s.faults.WildcardOnly)
	}
	g.streams = []*stream{st}
	s.grants[g.token] = g
	return g, nil
}

// issueSpecific grants topics that earlier grants named.
func (s *Server) issueSpecific(topics, scopes []string, includePort bool, host string) (*grant, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.collectGrants()
	g := s.newGrant(includePort, host)
	for _, t := range topics {
		a := s.aliases[t]
		if a == nil {
			return nil, &apiError{http.StatusNotFound, "topic " + strconv.Quote(t) + " not found"}
		}
		if !s.holds(a.scope) || (len(scopes) > 0 && !slices.Contains(scopes, a.scope)) {
			return nil, &apiError{http.StatusForbidden, "scope " + strconv.Quote(a.scope) + " of a topic is not granted"}
		}
	}
	for _, t := range topics {
		if g.allowed[t] {
			continue
		}
		a := s.aliases[t]
		s.addAlias(g, a.stream, t, a.scope)
		if !containsStream(g.streams, a.stream) {
			g.streams = append(g.streams, a.stream)
		}
	}
	s.grants[g.token] = g
	return g, nil
}

// addWildcards adds read topics holding MQTT wildcards to g: one per read
// scope when all is set, else one. They name no stream: nothing is published
// on them, though a client may subscribe to them.
func addWildcards(g *grant, sport, kind, id string, scopes []string, all bool) {
	for _, sc := range scopes {
		if !strings.HasPrefix(sc, "read:") {
			continue
		}
		topic := topicName(sport, kind, "+", id, sc) + "/#"
		if g.allowed[topic] {
			continue
		}
		g.topics = append(g.topics, topicGrant{Topic: topic, Scope: sc, Permission: "read"})
		g.allowed[topic] = true
		if !all {
			return
		}
	}
}

// newGrant starts a grant with a fresh client id and signed URL. Call with s.mu held.
func (s *Server) newGrant(includePort bool, host string) *grant {
	issued := s.now().Add(-s.faults.GrantAge).UTC().Truncate(time.Second)
	ttl := int64((s.opts.GrantTTL + time.Second - 1) / time.Second)
	g := &grant{
		token:    base64.StdEncoding.EncodeToString(randomBytes(48)),
		clientID: "stream-" + randomHex(12),
		allowed:  map[string]bool{},
		expires:  issued.Add(time.Duration(ttl) * time.Second),
	}
	g.url = s.signedURL(g.token, issued, ttl, includePort, host)
	return g
}

// addAlias adds topic to the grant and to the stream's topics for scope. Call with s.mu held.
func (s *Server) addAlias(g *grant, st *stream, topic, scope string) {
	perm := "read"
	if strings.HasPrefix(scope, "write:") {
		perm = "write"
	}
	g.topics = append(g.topics, topicGrant{Topic: topic, Scope: scope, Permission: perm})
	g.allowed[topic] = perm == "read"
	a := s.aliases[topic]
	if a == nil {
		a = &alias{stream: st, scope: scope}
		s.aliases[topic] = a
		st.addTopic(scope, topic)
	}
	a.refs++
}

// collectGrants forgets grants whose URL has expired and which no open
// connection uses, and the topics no live grant names. Call with s.mu held.
func (s *Server) collectGrants() {
	now := s.now()
	for token, g := range s.grants {
		if g.conns > 0 || now.Before(g.expires) {
			continue
		}
		delete(s.grants, token)
		for _, t := range g.topics {
			a := s.aliases[t.Topic]
			if a == nil {
				continue
			}
			if a.refs--; a.refs == 0 {
				delete(s.aliases, t.Topic)
				a.stream.removeTopic(a.scope, t.Topic)
			}
		}
	}
}

// signedURL builds the presigned WebSocket URL. Without includePort the real
// service leaves the port out (wss on 443); the emulator keeps it unless it
// listens on 80, since the URL would not reach it otherwise.
func (s *Server) signedURL(token string, issued time.Time, ttl int64, includePort bool, reqHost string) string {
	host, _, err := net.SplitHostPort(reqHost)
	if err != nil || host == "" {
		host, _, _ = net.SplitHostPort(s.hostPort())
	}
	hostPort := net.JoinHostPort(host, strconv.Itoa(s.port))
	if !includePort && s.port == 80 {
		hostPort = host
		if strings.Contains(host, ":") {
			hostPort = "[" + host + "]"
		}
	}
	q := url.Values{}
	q.Set("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
	q.Set("X-Amz-Credential", "ASIA"+strings.ToUpper(randomHex(8))+"/"+issued.Format("20060102")+"/sim-local-1/iotdevicegateway/aws4_request")
	q.Set("X-Amz-Date", issued.Format(amzDateLayout))
	q.Set("X-Amz-Expires", strconv.FormatInt(ttl, 10))
	q.Set("X-Amz-SignedHeaders", "host")
	q.Set("X-Amz-Security-Token", token)
	query := q.Encode()
	return "ws://" + hostPort + "/mqtt?" + query + "&X-Amz-Signature=" + s.sign(query)
}

func (s *Server) sign(canonicalQuery string) string {
	m := hmac.New(sha256.New, s.key)
	io.WriteString(m, "GET\n/mqtt\n"+canonicalQuery)
	return hex.EncodeToString(m.Sum(nil))
}

var (
	errRefused      = errors.New("handshakes are refused for a while")
	errBadSignature = errors.New("signature does not match")
	errExpired      = errors.New("signed URL has expired")
	errUnknownGrant = errors.New("grant unknown")
)

// verifyURL checks the signed query of a WebSocket upgrade and returns its grant.
func (s *Server) verifyURL(q url.Values) (*grant, error) {
	sig := q.Get("X-Amz-Signature")
	q.Del("X-Amz-Signature")
	want := s.sign(q.Encode())
	if sig == "" || !hmac.Equal([]byte(sig), []byte(want)) {
		return nil, errBadSignature
	}
	date, err := time.Parse(amzDateLayout, q.Get("X-Amz-Date"))
	if err != nil {
		return nil, errBadSignature
	}
	secs, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err != nil || secs <= 0 {
		return nil, errBadSignature
	}
	if !s.now().Before(date.Add(time.Duration(secs) * time.Second)) {
		return nil, errExpired
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.now().Before(s.refuseUntil) {
		return nil, errRefused
	}
	g := s.grants[q.Get("X-Amz-Security-Token")]
	if g == nil {
		return nil, errUnknownGrant
	}
	return g, nil
}

// topicName builds an opaque topic like s/b/<org>/<fixtureId>/r/e.
func topicName(sport, kind, org, id, scope string) string {
	var b strings.Builder
	b.WriteString("s/")
	if sport != "" {
		b.WriteString(topicSegment(strings.ToLower(sport[:1])))
	}
	b.WriteString("/" + org + "/")
	if kind == kindVenue {
		b.WriteString("v/")
	}
	b.WriteString(topicSegment(id))
	if rest, ok := strings.CutPrefix(scope, "write:"); ok {
		b.WriteString("/w/" + topicSegment(rest))
		return b.String()
	}
	b.WriteString("/r/" + scopeCodes[scope])
	return b.String()
}

var scopeCodes = map[string]string{
	ScopeEvents: "e", ScopeStatistics: "s", ScopeStatus: "st", ScopePlayByPlay: "p",
	ScopePersons: "pe", ScopePersonsCatchup: "pe/c", ScopeScoreboard: "sb", ScopeTracking: "t",
	ScopeBiometrics: "b", ScopeStatisticsPeriods: "sp", ScopeResponse: "rs",
}

// topicSegment keeps an ID usable as one MQTT topic level: anything but
// letters, digits and "-_.:" becomes %XX.
func topicSegment(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
			b.WriteByte(c)
		default:
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	if b.Len() == 0 {
		return "%00"
	}
	return b.String()
}

func randomOrg() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 5)
	for i := range b {
		b[i] = letters[mrand.IntN(len(letters))]
	}
	return string(b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

func containsStream(list []*stream, v *stream) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// SignedURLSecrets returns the secret values of every signed URL issued so
// far: each URL's X-Amz-Security-Token, X-Amz-Signature and X-Amz-Credential.
// Tests scan logs for them: a scan for the parameter names alone would miss
// a value logged without its name.
func (s *Server) SignedURLSecrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, g := range s.grants {
		u, err := url.Parse(g.url)
		if err != nil {
			continue
		}
		q := u.Query()
		for _, k := range []string{"X-Amz-Security-Token", "X-Amz-Signature", "X-Amz-Credential"} {
			if v := q.Get(k); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}
