package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// secretCores are distinctive parts of every secret used in the tests; none
// may appear in an error string, raw or escaped.
var secretCores = []string{"s3cr3t", "identity-token-XYZ", "bearer-secret", "client-secret", testSignature, testSessionToken}

func assertNoSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	s := err.Error()
	for _, core := range secretCores {
		if strings.Contains(s, core) {
			t.Errorf("error string leaks %q: %s", core, s)
		}
	}
}

const echoedSignedURL = "wss://h.example/mqtt?X-Amz-Credential=AKIA&X-Amz-Signature=" + testSignature + "&X-Amz-Security-Token=" + testSessionToken

// echoAPI answers every call with status and an error message that echoes
// the request body, the Authorization header and a signed URL, the way a
// careless server might.
func echoAPI(t *testing.T, status int, shape string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		msg := "rejected " + string(body) + " auth=" + r.Header.Get("Authorization") + " url=" + echoedSignedURL
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(status)
		var out any
		switch shape {
		case "error.message":
			out = map[string]any{"error": map[string]string{"message": msg}}
		case "error":
			out = map[string]any{"error": msg}
		case "Message":
			out = map[string]string{"Message": msg}
		case "raw":
			_, _ = io.WriteString(w, msg)
			return
		case "grant without clientId":
			out = map[string]any{"data": map[string]any{"url": echoedSignedURL + "&X-Amz-Date=20240315T120000Z&x=" + string(body),
				"topics": []map[string]string{{"topic": "t", "scope": "read:stream_events", "permission": "read"}}}}
		default:
			out = map[string]string{"message": msg}
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestNoSecretsInErrors(t *testing.T) {
	bearer := func(context.Context) (string, error) { return "bearer-secret-token", nil }
	type kase struct {
		name   string
		status int
		shape  string
		want   error
	}
	kases := []kase{
		{name: "400", status: 400, shape: "error.message", want: ErrBadRequest},
		{name: "401", status: 401, shape: "message", want: ErrUnauthorized},
		{name: "403", status: 403, shape: "Message", want: ErrForbidden},
		{name: "404", status: 404, shape: "error", want: ErrNotFound},
		{name: "422", status: 422, shape: "message", want: ErrBadRequest},
		{name: "429", status: 429, shape: "message", want: ErrRateLimited},
		{name: "500", status: 500, shape: "error.message", want: ErrUnavailable},
		{name: "503", status: 503, shape: "message", want: ErrUnavailable},
		{name: "200 not JSON", status: 200, shape: "raw", want: ErrMalformed},
		{name: "200 without clientId", status: 200, shape: "grant without clientId", want: ErrMalformed},
	}
	for _, creds := range []struct {
		name   string
		creds  Credentials
		secret string
	}{{"application", appCreds(), testSecret}, {"user", userCreds(), testIdentityToken}} {
		for _, k := range kases {
			t.Run(creds.name+"/"+k.name, func(t *testing.T) {
				srv := echoAPI(t, k.status, k.shape)
				c := newTestClient(t, srv.URL+"/v1", creds.creds, bearer)
				_, err := c.Access(t.Context(), fixtureReq())
				if !errors.Is(err, k.want) {
					t.Fatalf("err = %v, want %v", err, k.want)
				}
				assertNoSecrets(t, err)
				if strings.Contains(err.Error(), `"fixtureId"`) {
					t.Errorf("error string carries the request body: %s", err)
				}
				if _, ok := RetryAfter(err); ok && IsPermanent(err) {
					t.Errorf("permanent error carries a Retry-After: %s", err)
				}
				_, err = c.Specific(t.Context(), []string{"t"}, []string{"read:stream_events"})
				if !errors.Is(err, k.want) {
					t.Fatalf("Specific err = %v, want %v", err, k.want)
				}
				assertNoSecrets(t, err)
			})
		}
		t.Run(creds.name+"/timeout", func(t *testing.T) {
			api := blockingAPI(t)
			c := newTestClient(t, api.apiURL(), creds.creds, bearer)
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			_, err := c.Access(ctx, fixtureReq())
			assertTransport(t, err)
		})
		t.Run(creds.name+"/token source error", func(t *testing.T) {
			srv := echoAPI(t, 200, "raw")
			c := newTestClient(t, srv.URL+"/v1", creds.creds, func(context.Context) (string, error) {
				return "", fmt.Errorf("echo %s %s", creds.secret, echoedSignedURL)
			})
			_, err := c.Access(t.Context(), fixtureReq())
			assertTransport(t, err)
		})
	}
}

func TestRedact(t *testing.T) {
	r := newRedactor(testSecret, "", testIdentityToken)
	jsonSecret, _ := json.Marshal(testSecret)
	in := strings.Join([]string{
		testSecret, string(jsonSecret), "q=" + url.QueryEscape(testSecret), "p=" + url.PathEscape(testSecret), testIdentityToken, echoedSignedURL,
	}, " ")
	got := r.redact(in)
	for _, core := range secretCores {
		if strings.Contains(got, core) {
			t.Errorf("redact left %q in %q", core, got)
		}
	}
	if !strings.Contains(got, "h.example") || !strings.Contains(got, "X-Amz-Signature=[REDACTED]") {
		t.Errorf("redact removed too much: %q", got)
	}
	if got := newRedactor("").redact("plain text"); got != "plain text" {
		t.Errorf("empty secret changed the text: %q", got)
	}
}

func TestClassification(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		permanent  bool
		outcome    string
		retryAfter time.Duration
	}{
		{name: "nil", err: nil, outcome: "ok"},
		{name: "unauthorized", err: &Error{Status: 401, Err: ErrUnauthorized}, permanent: true, outcome: "unauthorized"},
		{name: "forbidden", err: &Error{Status: 403, Err: ErrForbidden}, permanent: true, outcome: "forbidden"},
		{name: "not found", err: &Error{Status: 404, Err: ErrNotFound}, permanent: true, outcome: "not_found"},
		{name: "bad request", err: &Error{Status: 400, Err: ErrBadRequest}, permanent: true, outcome: "bad_request"},
		{name: "rate limited", err: &Error{Status: 429, Err: ErrRateLimited, RetryAfter: 2 * time.Second}, outcome: "rate_limited", retryAfter: 2 * time.Second},
		{name: "unavailable", err: &Error{Status: 503, Err: ErrUnavailable}, outcome: "server_error"},
		{name: "malformed", err: &Error{Status: 200, Err: ErrMalformed}, outcome: "malformed"},
		{name: "transport", err: &Error{Err: ErrTransport, cause: context.DeadlineExceeded}, outcome: "transport"},
		{name: "wrapped", err: fmt.Errorf("fixture F1: %w", &Error{Status: 403, Err: ErrForbidden}), permanent: true, outcome: "forbidden"},
		{name: "wrapped retry after", err: fmt.Errorf("x: %w", &Error{Status: 503, Err: ErrUnavailable, RetryAfter: time.Minute}), outcome: "server_error", retryAfter: time.Minute},
		{name: "foreign error", err: errors.New("boom"), outcome: "transport"},
		{name: "bare sentinel", err: ErrNotFound, outcome: "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPermanent(tt.err); got != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tt.permanent)
			}
			var ae *Error
			if errors.As(tt.err, &ae) && ae.Permanent() != tt.permanent {
				t.Errorf("Permanent = %v, want %v", ae.Permanent(), tt.permanent)
			}
			if got := Outcome(tt.err); got != tt.outcome {
				t.Errorf("Outcome = %q, want %q", got, tt.outcome)
			}
			d, ok := RetryAfter(tt.err)
			if d != tt.retryAfter || ok != (tt.retryAfter > 0) {
				t.Errorf("RetryAfter = %v, %v; want %v", d, ok, tt.retryAfter)
			}
			if tt.err != nil && tt.err.Error() == "" {
				t.Error("empty error string")
			}
		})
	}
}

func TestErrorUnwrap(t *testing.T) {
	err := &Error{Err: ErrTransport, cause: context.Canceled}
	if !errors.Is(err, ErrTransport) || !errors.Is(err, context.Canceled) || errors.Is(err, ErrMalformed) {
		t.Errorf("errors.Is chain wrong for %v", err)
	}
	if got := (&Error{Err: ErrUnavailable}).Unwrap(); len(got) != 1 {
		t.Errorf("Unwrap = %v, want only the sentinel", got)
	}
	if s := (&Error{}).Error(); !strings.HasPrefix(s, "access: ") {
		t.Errorf("zero Error string = %q", s)
	}
}
