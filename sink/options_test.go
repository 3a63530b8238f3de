package sink

import (
	"errors"
	"strings"
	"testing"
)

// TestConnectOptionsRules checks the rules on authentication and TLS options:
// each error names the field at fault and the field it goes with, so that a
// caller (config) can name its own settings for both.
func TestConnectOptionsRules(t *testing.T) {
	const secret = "s3cret-pw-71"
	tests := []struct {
		name      string
		opts      ConnectOptions
		wantErr   error // nil: valid
		wantField string
		wantOther string
		wantText  string
	}{
		{name: "user and password", opts: ConnectOptions{User: "u", Password: secret}},
		{name: "token alone", opts: ConnectOptions{Token: secret}},
		{name: "tls pair", opts: ConnectOptions{TLSCert: "c", TLSKey: "k"}},
		{name: "creds and nkey", opts: ConnectOptions{CredsFile: "a", NKeyFile: "b"},
			wantErr: ErrConflictingOptions, wantField: "NKeyFile", wantOther: "CredsFile",
			wantText: "NKeyFile: invalid nats options: NKeyFile cannot be combined with CredsFile: choose one way to authenticate"},
		{name: "token and user", opts: ConnectOptions{Token: secret, User: "u", Password: secret},
			wantErr: ErrConflictingOptions, wantField: "User", wantOther: "Token"},
		{name: "token and password alone", opts: ConnectOptions{Token: secret, Password: secret},
			wantErr: ErrConflictingOptions, wantField: "User", wantOther: "Token"},
		{name: "nkey and token", opts: ConnectOptions{NKeyFile: "b", Token: secret},
			wantErr: ErrConflictingOptions, wantField: "Token", wantOther: "NKeyFile"},
		{name: "password without user", opts: ConnectOptions{Password: secret},
			wantErr: ErrMissingOption, wantField: "User", wantOther: "Password",
			wantText: "User: invalid nats options: User is required with Password"},
		{name: "user without password", opts: ConnectOptions{User: "u"},
			wantErr: ErrMissingOption, wantField: "Password", wantOther: "User"},
		{name: "cert without key", opts: ConnectOptions{TLSCert: "c"},
			wantErr: ErrMissingOption, wantField: "TLSKey", wantOther: "TLSCert"},
		{name: "key without cert", opts: ConnectOptions{TLSKey: "k"},
			wantErr: ErrMissingOption, wantField: "TLSCert", wantOther: "TLSKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var oe *OptionError
			if !errors.As(err, &oe) || !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("Validate = %v; want an *OptionError wrapping %v and ErrInvalidOptions", err, tt.wantErr)
			}
			if oe.Option != tt.wantField || oe.Other != tt.wantOther {
				t.Errorf("OptionError{Option: %q, Other: %q}, want %q, %q", oe.Option, oe.Other, tt.wantField, tt.wantOther)
			}
			if tt.wantText != "" && err.Error() != tt.wantText {
				t.Errorf("Validate = %q, want %q", err, tt.wantText)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q holds a secret", err)
			}
		})
	}
}

// TestAuthHint checks the hint logged when the server refuses the
// credentials: it names the method in use, in the options' own terms.
func TestAuthHint(t *testing.T) {
	tests := []struct {
		name string
		opts ConnectOptions
		want string
	}{
		{"creds", ConnectOptions{CredsFile: "f"}, "check the NATS credentials file: its user JWT must be signed by an account the server trusts and not be expired or revoked"},
		{"nkey", ConnectOptions{NKeyFile: "f"}, "check the NATS nkey seed file: its public key must be a user in the server's configuration"},
		{"token", ConnectOptions{Token: "t"}, "check the NATS token against the server's authorization token"},
		{"user", ConnectOptions{User: "u", Password: "p"}, "check the NATS user and password against the server's users"},
		{"none", ConnectOptions{}, "the server requires authentication and none is configured: set a NATS user and password, a token, a credentials file or an nkey seed file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.opts.authHint(); got != tt.want {
				t.Errorf("authHint = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestAuthHintOverride checks that ConnectOptions.AuthHint replaces the
// default hint.
func TestAuthHintOverride(t *testing.T) {
	o := ConnectOptions{Token: "t", AuthHint: "check SOME_TOKEN"}
	if got := o.authHint(); got != "check SOME_TOKEN" {
		t.Errorf("authHint = %q, want the one given", got)
	}
}
