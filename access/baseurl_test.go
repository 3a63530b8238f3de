package access

import (
	"strings"
	"testing"
)

// urlSecret is a password that fits in a URL's user information.
const urlSecret = "url-secret-7c6d5e"

func TestCheckBaseURL(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // the cleaned base when valid
		wantErr string // "" when valid
	}{
		{name: "production", in: ProductionBaseURL, want: ProductionBaseURL},
		{name: "trailing slash", in: "http://127.0.0.1:9000/v1/", want: "http://127.0.0.1:9000/v1"},
		{name: "empty", in: "", wantErr: "absolute http or https URL"},
		{name: "relative", in: "/v1", wantErr: "absolute http or https URL"},
		{name: "other scheme", in: "ftp://h/v1", wantErr: "absolute http or https URL"},
		{name: "no host", in: "https:///v1", wantErr: "absolute http or https URL"},
		{name: "unparsable", in: "http://[::1", wantErr: "absolute http or https URL"},
		{name: "user and password", in: "https://u:" + urlSecret + "@h/v1", wantErr: "must not contain user information"},
		{name: "user only", in: "https://" + urlSecret + "@h/v1", wantErr: "must not contain user information"},
		{name: "query", in: "https://h/v1?a=b", wantErr: "query or fragment"},
		{name: "empty query", in: "https://h/v1?", wantErr: "query or fragment"},
		{name: "fragment", in: "https://h/v1#x", wantErr: "query or fragment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckBaseURL(tt.in)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("CheckBaseURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
				if _, err := New(Options{BaseURL: tt.in, Credentials: appCreds()}); err != nil {
					t.Errorf("New refuses a base CheckBaseURL accepts: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckBaseURL(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), urlSecret) {
				t.Errorf("error %q contains the secret", err)
			}
			_, nerr := New(Options{BaseURL: tt.in, Credentials: appCreds()})
			if nerr == nil || !strings.Contains(nerr.Error(), tt.wantErr) || !strings.HasPrefix(nerr.Error(), "access: base URL ") {
				t.Errorf("New: %v; want the same rule, naming the base URL", nerr)
			}
		})
	}
}

func TestCheckTokenURL(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{name: "https", in: "https://auth.example.com/oauth/token"},
		{name: "with query", in: "https://auth.example.com/token?tenant=x"},
		{name: "relative", in: "/token", wantErr: "absolute http or https URL"},
		{name: "user info", in: "https://cid:" + urlSecret + "@auth.example.com/token", wantErr: "must not contain user information"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckTokenURL(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckTokenURL(%q) = %v", tt.in, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), urlSecret) {
				t.Fatalf("CheckTokenURL(%q) = %v; want an error containing %q and not the secret", tt.in, err, tt.wantErr)
			}
		})
	}
}
