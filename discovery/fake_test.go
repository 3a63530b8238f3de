package discovery

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
)

// handlerTransport serves requests with an http.Handler in memory: no
// sockets, so that it works inside a synctest bubble.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// fakeTokens issues "tok-N", valid ttl, and counts the calls.
type fakeTokens struct {
	mu    sync.Mutex
	ttl   time.Duration
	calls int
	err   error
}

func (f *fakeTokens) RESTToken(_ context.Context, sport string, orgs []string) (access.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return access.Token{}, f.err
	}
	return access.Token{Value: "tok-" + strconv.Itoa(f.calls), Type: "bearer", ExpiresAt: time.Now().Add(f.ttl)}, nil
}

func (f *fakeTokens) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// fakeREST is an organization fixtures listing with paging, a bearer check
// and fault knobs.
type fakeREST struct {
	mu       sync.Mutex
	fixtures map[string][]Fixture // by organization
	links    bool                 // page with links.next (else meta.count only)
	refuse   map[string]bool      // tokens answered 401
	faults   []fault              // answered first, one per call
	calls    []restCall
}

type fault struct {
	status     int
	retryAfter string
}

type restCall struct {
	at       time.Time
	path     string
	query    string
	auth     string
	status   int
	from, to string
}

func newFakeREST() *fakeREST {
	return &fakeREST{fixtures: map[string][]Fixture{}, refuse: map[string]bool{}}
}

func (f *fakeREST) set(org string, list ...Fixture) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fixtures[org] = list
}

func (f *fakeREST) fail(fs ...fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, fs...)
}

func (f *fakeREST) log() []restCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]restCall(nil), f.calls...)
}

func (f *fakeREST) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	c := restCall{at: time.Now(), path: r.URL.Path, query: r.URL.RawQuery, auth: r.Header.Get("Authorization"),
		from: q.Get("fromTimeUTC"), to: q.Get("toTimeUTC")}
	reply := func(status int, v any) {
		c.status = status
		f.calls = append(f.calls, c)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	if len(f.faults) > 0 {
		ft := f.faults[0]
		f.faults = f.faults[1:]
		if ft.retryAfter != "" {
			w.Header().Set("Retry-After", ft.retryAfter)
		}
		reply(ft.status, map[string]string{"message": http.StatusText(ft.status)})
		return
	}
	if len(c.auth) < 8 || f.refuse[c.auth[7:]] {
		reply(http.StatusUnauthorized, map[string]string{"message": "Unauthorized"})
		return
	}
	var org string
	if _, err := fmt.Sscanf(r.URL.Path, "/v1/basketball/o/%s", &org); err != nil {
		reply(http.StatusNotFound, map[string]string{"message": "no route"})
		return
	}
	org = org[:len(org)-len("/fixtures")]
	list := f.fixtures[org]
	limit, _ := strconv.Atoi(q.Get("limit"))
	offset, _ := strconv.Atoi(q.Get("offset"))
	end := min(offset+limit, len(list))
	rows := []Fixture{}
	if offset < len(list) {
		rows = list[offset:end]
	}
	body := map[string]any{
		"meta": map[string]int{"count": len(list), "limit": limit, "offset": offset},
		"data": rows,
	}
	links := map[string]string{"self": r.URL.String()}
	if f.links && end < len(list) {
		q.Set("offset", strconv.Itoa(end))
		links["next"] = r.URL.Path + "?" + q.Encode()
	}
	body["links"] = links
	reply(http.StatusOK, body)
}

// fakeFollower records what a Poller asks of the supervisor. unfollow
// stands for an admin DELETE.
type fakeFollower struct {
	mu      sync.Mutex
	streams map[string]fixtures.Source // "fixture/id" or "venue/id"
	follows map[string]int             // FollowFrom calls per key
	finals  map[string]string          // StopAfterFinal calls: id → status
}

func newFakeFollower() *fakeFollower {
	return &fakeFollower{streams: map[string]fixtures.Source{}, follows: map[string]int{}, finals: map[string]string{}}
}

func (f *fakeFollower) FollowFrom(kind access.Kind, id string, source fixtures.Source) (bool, error) {
	if err := fixtures.ValidateID(id); err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := string(kind) + "/" + id
	f.follows[key]++
	if _, ok := f.streams[key]; ok {
		return false, nil
	}
	f.streams[key] = source
	return true, nil
}

func (f *fakeFollower) StopAfterFinal(id, status string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finals[id] = status
	_, ok := f.streams["fixture/"+id]
	return ok
}

func (f *fakeFollower) unfollow(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.streams, key)
}

func (f *fakeFollower) keys() map[string]fixtures.Source {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]fixtures.Source{}
	for k, v := range f.streams {
		out[k] = v
	}
	return out
}

func (f *fakeFollower) finalCalls() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for k, v := range f.finals {
		out[k] = v
	}
	return out
}

func (f *fakeFollower) followCalls(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.follows[key]
}

// startIn is a startTimeUTC d from now.
func startIn(d time.Duration) string { return time.Now().Add(d).UTC().Format(TimeLayout) }

// newTestClient returns a Client on rest with tokens, pages of pageSize.
func newTestClient(rest *fakeREST, tokens *fakeTokens, pageSize int, orgs ...string) *Client {
	c, err := NewClient(ClientOptions{
		BaseURL: "https://rest.example/v1", Sport: "basketball", Organizations: orgs, Tokens: tokens,
		HTTPClient: &http.Client{Transport: handlerTransport{rest}}, PageSize: pageSize,
	})
	if err != nil {
		panic(err)
	}
	return c
}
