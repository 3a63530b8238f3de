package redact

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no userinfo", "nats://h:4222", "nats://h:4222"},
		{"at sign in path", "https://example.com/a@b", "https://example.com/a@b"},
		{"token", "nats://SECRETTOKEN@h:4222", "nats://[set]@h:4222"},
		{"user", "nats://user@h:4222", "nats://[set]@h:4222"},
		{"user and password", "nats://u:pw@h:4222", "nats://[set]@h:4222"},
		{"tls scheme", "tls://u:pw@h:4222", "tls://[set]@h:4222"},
		{"https with path", "https://u:pw@example.com/v1", "https://[set]@example.com/v1"},
		{"unparsable", "nats://u:pw@[::1", "nats://[set]@[::1"},
		{"unparsable without scheme", "tok@[::1", "[set]@[::1"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := URL(tt.in); got != tt.want {
				t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSignedQuery(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain text", "connection refused", "connection refused"},
		{"signed url", "GET wss://h.example/mqtt?X-Amz-Signature=abc123&X-Amz-Security-Token=tok%2F1&x=1 failed",
			"GET wss://h.example/mqtt?X-Amz-Signature=[REDACTED]&X-Amz-Security-Token=[REDACTED]&x=1 failed"},
		{"lower case, quoted", `"x-amz-credential=AKIA/2026"`, `"x-amz-credential=[REDACTED]"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SignedQuery(tt.in); got != tt.want {
				t.Errorf("SignedQuery(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	const secret = `s3cr3t/+"va lue`
	jsonForm, _ := json.Marshal(secret)
	tests := []struct {
		name    string
		secrets Secrets
		in      string
		want    string
	}{
		{"raw", NewSecrets(secret), "got " + secret + " back", "got [REDACTED] back"},
		{"query escaped", NewSecrets(secret), "q=" + url.QueryEscape(secret), "q=[REDACTED]"},
		{"path escaped", NewSecrets(secret), "p=" + url.PathEscape(secret), "p=[REDACTED]"},
		{"json escaped", NewSecrets(secret), "j=" + string(jsonForm), `j="[REDACTED]"`},
		{"empty value ignored", NewSecrets(""), "plain text", "plain text"},
		{"zero value", Secrets{}, "plain " + secret, "plain " + secret},
		{"longest first", NewSecrets("abcd", "abcdefgh"), "abcdefgh", "[REDACTED]"},
		{"merge", NewSecrets("first-secret").Merge(NewSecrets("second-secret")), "first-secret second-secret", "[REDACTED] [REDACTED]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.secrets.String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSignedURL(t *testing.T) {
	const token = "FwoGZXIvYXdzEXAMPLE+secret/value=="
	raw := "wss://h.example/mqtt?X-Amz-Expires=60&X-Amz-Security-Token=" + url.QueryEscape(token) + "&X-Amz-Signature=deadbeef00"
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	decoded, _ := url.QueryUnescape(u.RawQuery)
	tests := []struct {
		name    string
		secrets Secrets
		in      string
	}{
		{"whole url", SignedURL(u), "dial " + raw + ": refused"},
		{"decoded query", SignedURL(u), "bad request " + decoded},
		{"single decoded value", SignedURL(u), "token " + token + " rejected"},
		{"unparsable url", SignedURLString(raw + "%zz"), "dial " + raw + "%zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.secrets.String(tt.in)
			for _, s := range []string{"deadbeef00", "FwoGZXIvYXdzEXAMPLE", url.QueryEscape(token)} {
				if strings.Contains(got, s) {
					t.Errorf("String left %q in %q", s, got)
				}
			}
			if !strings.Contains(got, "h.example") && tt.name == "whole url" {
				t.Errorf("String removed the host: %q", got)
			}
		})
	}
	if got := SignedURL(u).String("expires in 60 s"); got != "expires in 60 s" {
		t.Errorf("a short query value was redacted: %q", got)
	}
}

func TestErr(t *testing.T) {
	s := NewSecrets("hunter22")
	inner := errors.New("auth failed for hunter22")
	got := s.Err(inner)
	if got.Error() != "auth failed for [REDACTED]" || !errors.Is(got, inner) {
		t.Errorf("Err = %q (is the original: %v)", got, errors.Is(got, inner))
	}
	clean := errors.New("connection refused")
	if got := s.Err(clean); got != clean {
		t.Errorf("a clean error was rewrapped: %v", got)
	}
	if s.Err(nil) != nil {
		t.Error("Err(nil) is not nil")
	}
}
