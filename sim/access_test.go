package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAccess(t *testing.T) {
	s := startSim(t, Options{
		UserIdentityToken: "user-token", ApplicationID: "app",
		Scopes: []string{ScopeEvents, ScopeStatus, ScopeScoreboard, ScopePersons, ScopePersonsCatchup},
	})
	first := grantOf(t, s, "F1", false, ScopeEvents)

	tests := []struct {
		name       string
		path       string
		body       map[string]any
		wantStatus int
		wantTopics int
	}{
		{name: "fixture", path: "/stream/fixture/access", body: fixtureBody("F1", ScopeEvents, ScopeStatus), wantStatus: 200, wantTopics: 2},
		{name: "catchup scope", path: "/stream/fixture/access", body: fixtureBody("F1", ScopePersons, ScopePersonsCatchup), wantStatus: 200, wantTopics: 2},
		{name: "user credentials", path: "/stream/fixture/access", body: map[string]any{
			"fixtureId": "F1", "sport": "basketball", "scopes": []string{ScopeEvents},
			"userIdentityToken": "user-token", "applicationId": "app",
		}, wantStatus: 200, wantTopics: 1},
		{name: "venue", path: "/stream/venue/access", body: map[string]any{
			"venueId": "V1", "sport": "basketball", "scopes": []string{ScopeScoreboard},
			"credentialId": testID, "credentialSecret": testSecret,
		}, wantStatus: 200, wantTopics: 1},
		{name: "specific", path: "/stream/fixture/specific", body: map[string]any{
			"topics": topicsOf(first), "scopes": []string{ScopeEvents},
			"credentials": map[string]string{"credentialId": testID, "credentialSecret": testSecret},
		}, wantStatus: 200, wantTopics: 1},
		{name: "specific unknown topic", path: "/stream/fixture/specific", body: map[string]any{
			"topics": []string{"s/b/x/F9/r/e"}, "credentialId": testID, "credentialSecret": testSecret,
		}, wantStatus: 404},
		{name: "wrong secret", path: "/stream/fixture/access", body: map[string]any{
			"fixtureId": "F1", "sport": "basketball", "scopes": []string{ScopeEvents},
			"credentialId": testID, "credentialSecret": "nope",
		}, wantStatus: 401},
		{name: "wrong user token", path: "/stream/fixture/access", body: map[string]any{
			"fixtureId": "F1", "sport": "basketball", "scopes": []string{ScopeEvents},
			"userIdentityToken": "other", "applicationId": "app",
		}, wantStatus: 401},
		{name: "no credentials", path: "/stream/fixture/access", body: map[string]any{
			"fixtureId": "F1", "sport": "basketball", "scopes": []string{ScopeEvents},
		}, wantStatus: 401},
		{name: "wrong sport", path: "/stream/fixture/access", body: func() map[string]any {
			b := fixtureBody("F1", ScopeEvents)
			b["sport"] = "icehockey"
			return b
		}(), wantStatus: 400},
		{name: "no scopes", path: "/stream/fixture/access", body: fixtureBody("F1"), wantStatus: 400},
		{name: "unknown scope", path: "/stream/fixture/access", body: fixtureBody("F1", "read:nonsense"), wantStatus: 400},
		{name: "scope not held fails the whole call", path: "/stream/fixture/access", body: fixtureBody("F1", ScopeEvents, ScopeTracking), wantStatus: 403},
		{name: "unknown fixture", path: "/stream/fixture/access", body: fixtureBody("F404", ScopeEvents), wantStatus: 404},
		{name: "unknown venue", path: "/stream/venue/access", body: map[string]any{
			"venueId": "V404", "sport": "basketball", "scopes": []string{ScopeScoreboard},
			"credentialId": testID, "credentialSecret": testSecret,
		}, wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw json.RawMessage
			resp := post(t, s, tt.path, tt.body, &raw)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.wantStatus, raw)
			}
			if tt.wantStatus != 200 {
				var e errorResponse
				if err := json.Unmarshal(raw, &e); err != nil || e.Error.Message == "" {
					t.Fatalf("error body = %s, want {\"error\":{\"message\":...}}", raw)
				}
				if strings.Contains(string(raw), testSecret) {
					t.Fatal("error body contains the secret")
				}
				return
			}
			var g grantResponse
			if err := json.Unmarshal(raw, &g); err != nil {
				t.Fatal(err)
			}
			checkGrant(t, s, g.Data, tt.wantTopics)
		})
	}
}

func checkGrant(t *testing.T, s *Server, g accessData, wantTopics int) {
	t.Helper()
	if !strings.HasPrefix(g.ClientID, "stream-") {
		t.Errorf("clientId = %q, want stream-…", g.ClientID)
	}
	if len(g.Topics) != wantTopics {
		t.Errorf("topics = %d, want %d", len(g.Topics), wantTopics)
	}
	for _, tp := range g.Topics {
		if tp.Permission != "read" || tp.Scope == "" || tp.Topic == "" {
			t.Errorf("topic %+v", tp)
		}
	}
	u, err := url.Parse(g.URL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "ws" || u.Path != "/mqtt" || u.Host != s.Addr().String() {
		t.Errorf("url = %s://%s%s", u.Scheme, u.Host, u.Path)
	}
	q := u.Query()
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature"} {
		if q.Get(k) == "" {
			t.Errorf("url lacks %s", k)
		}
	}
	if _, err := time.Parse(amzDateLayout, q.Get("X-Amz-Date")); err != nil {
		t.Errorf("X-Amz-Date: %v", err)
	}
	if q.Get("X-Amz-Expires") != "3600" {
		t.Errorf("X-Amz-Expires = %s, want 3600", q.Get("X-Amz-Expires"))
	}
	secrets := s.SignedURLSecrets()
	for _, k := range []string{"X-Amz-Credential", "X-Amz-Security-Token", "X-Amz-Signature"} {
		if !slices.Contains(secrets, q.Get(k)) {
			t.Errorf("SignedURLSecrets lacks the %s of an issued URL", k)
		}
	}
}

func TestTopicNames(t *testing.T) {
	tests := []struct {
		name   string
		stable bool
	}{
		{name: "change with every grant", stable: false},
		{name: "stable", stable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSim(t, Options{StableTopics: tt.stable})
			a := grantOf(t, s, "F1", false, ScopeEvents)
			b := grantOf(t, s, "F1", false, ScopeEvents)
			if same := a.Topics[0].Topic == b.Topics[0].Topic; same != tt.stable {
				t.Fatalf("topics %q and %q: same = %v, want %v", a.Topics[0].Topic, b.Topics[0].Topic, same, tt.stable)
			}
			if a.ClientID == b.ClientID {
				t.Fatal("client id reused")
			}
		})
	}
}

func TestTopicSegment(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "plain", in: "sr:match:123", want: "sr:match:123"},
		{name: "wildcards and slash", in: "a+b/c#", want: "a%2Bb%2Fc%23"},
		{name: "empty", in: "", want: "%00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := topicSegment(tt.in); got != tt.want {
				t.Fatalf("topicSegment(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAccessFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
		check  func(t *testing.T, resp *http.Response, body []byte, took time.Duration)
	}{
		{name: "500", faults: Faults{Access500: 1}, check: func(t *testing.T, resp *http.Response, _ []byte, _ time.Duration) {
			if resp.StatusCode != 500 {
				t.Fatalf("status = %d", resp.StatusCode)
			}
		}},
		{name: "429 with Retry-After", faults: Faults{Access429: 1, RetryAfter: 2 * time.Second}, check: func(t *testing.T, resp *http.Response, _ []byte, _ time.Duration) {
			if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
				t.Fatalf("status = %d, Retry-After = %q", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
		}},
		{name: "garbage", faults: Faults{AccessGarbage: 1}, check: func(t *testing.T, resp *http.Response, body []byte, _ time.Duration) {
			if resp.StatusCode != 200 || json.Valid(body) {
				t.Fatalf("status = %d, body valid JSON: %s", resp.StatusCode, body)
			}
		}},
		{name: "slow", faults: Faults{AccessSlow: 1, SlowDelay: 300 * time.Millisecond}, check: func(t *testing.T, resp *http.Response, _ []byte, took time.Duration) {
			if resp.StatusCode != 200 || took < 300*time.Millisecond {
				t.Fatalf("status = %d after %v", resp.StatusCode, took)
			}
		}},
		{name: "none", faults: Faults{}, check: func(t *testing.T, resp *http.Response, body []byte, _ time.Duration) {
			if resp.StatusCode != 200 || !json.Valid(body) {
				t.Fatalf("status = %d: %s", resp.StatusCode, body)
			}
		}},
	}
	s := startSim(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetFaults(tt.faults)
			b, _ := json.Marshal(fixtureBody("F1", ScopeEvents))
			start := time.Now()
			resp, err := http.Post(s.APIURL()+"/stream/fixture/access", "application/json", strings.NewReader(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			tt.check(t, resp, body, time.Since(start))
		})
	}
	st := s.Stats()
	for _, code := range []int{200, 429, 500} {
		if st.AccessCalls[code] == 0 {
			t.Errorf("Stats().AccessCalls[%d] = 0", code)
		}
	}
}

func TestSetFaultsClamps(t *testing.T) {
	s := startSim(t, Options{})
	s.SetFaults(Faults{Access500: 2, Access429: 2, SlowDelay: -1})
	f := s.Faults()
	if f.Access500 != 0.5 || f.Access429 != 0.5 || f.SlowDelay != 2*time.Second {
		t.Fatalf("faults = %+v", f)
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{name: "unknown scope", o: Options{Scopes: []string{"read:nothing"}}},
		{name: "negative rate", o: Options{Feed: Feed{Rate: -1}}},
		{name: "share above 1", o: Options{Faults: Faults{Access500: 1.5}}},
		{name: "payload too large", o: Options{Feed: Feed{PayloadSize: 1 << 20}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(t.Context(), tt.o)
			if err == nil {
				_ = s.Close()
				t.Fatal("Start accepted bad options")
			}
		})
	}
}

func TestIncludePort(t *testing.T) {
	s := startSim(t, Options{})
	body := fixtureBody("F1", ScopeEvents)
	body["includePort"] = false
	var g grantResponse
	post(t, s, "/stream/fixture/access", body, &g)
	u, _ := url.Parse(g.Data.URL)
	// The emulator does not listen on 80, so the port stays to keep the URL usable.
	if u.Port() != strconv.Itoa(s.port) {
		t.Fatalf("url host = %s, want the port kept", u.Host)
	}
}
