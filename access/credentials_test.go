package access

import (
	"errors"
	"strings"
	"testing"
)

// TestCredentialsValidate checks the one rule for credentials: exactly one
// complete kind, and an error that names the field at fault (so that config
// can name its variable) without any secret.
func TestCredentialsValidate(t *testing.T) {
	tests := []struct {
		name      string
		creds     Credentials
		wantErr   error
		wantField string
		wantText  string
	}{
		{name: "application", creds: Credentials{CredentialID: "id", CredentialSecret: testSecret}},
		{name: "individual user", creds: Credentials{UserIdentityToken: testIdentityToken, ApplicationID: "app"}},
		{name: "none", creds: Credentials{}, wantErr: ErrNoCredentials, wantField: "CredentialID",
			wantText: "access: credentials: no credentials: set a credential id and secret, or a user identity token and application id"},
		{name: "secret without id", creds: Credentials{CredentialSecret: testSecret}, wantErr: ErrIncompleteCredentials, wantField: "CredentialID",
			wantText: "access: credentials: credential id is empty"},
		{name: "id without secret", creds: Credentials{CredentialID: "id"}, wantErr: ErrIncompleteCredentials, wantField: "CredentialSecret",
			wantText: "access: credentials: credential secret is empty"},
		{name: "application id without token", creds: Credentials{ApplicationID: "app"}, wantErr: ErrIncompleteCredentials, wantField: "UserIdentityToken",
			wantText: "access: credentials: user identity token is empty"},
		{name: "token without application id", creds: Credentials{UserIdentityToken: testIdentityToken}, wantErr: ErrIncompleteCredentials, wantField: "ApplicationID",
			wantText: "access: credentials: application id is empty"},
		{name: "both kinds", creds: Credentials{CredentialID: "id", CredentialSecret: testSecret, UserIdentityToken: testIdentityToken, ApplicationID: "app"},
			wantErr: ErrMixedCredentials, wantField: "UserIdentityToken"},
		{name: "both kinds, partly", creds: Credentials{CredentialID: "id", ApplicationID: "app"},
			wantErr: ErrMixedCredentials, wantField: "UserIdentityToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.creds.Validate()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ce *CredentialsError
			if !errors.As(err, &ce) || !errors.Is(err, tt.wantErr) || ce.Field != tt.wantField {
				t.Fatalf("Validate = %v; want a *CredentialsError for %s wrapping %v", err, tt.wantField, tt.wantErr)
			}
			if tt.wantText != "" && err.Error() != tt.wantText {
				t.Errorf("Validate = %q, want %q", err, tt.wantText)
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), testIdentityToken) {
				t.Errorf("error %q holds a secret", err)
			}
		})
	}
}

// TestUnauthorizedHint checks that the hint given in Options replaces the
// default one on a 401, and only there.
func TestUnauthorizedHint(t *testing.T) {
	const hint = "check SOME_SETTING and ITS_SECRET"
	tests := []struct {
		name   string
		status int
		want   string
	}{
		{name: "401 says the hint", status: 401, want: "access: credentials rejected (401): Unauthorized: " + hint},
		{name: "404 keeps its own", status: 404, want: "access: not found (404): Not Found: check the fixture id and the access API URL (its environment)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, jsonWriter(tt.status, "", nil))
			c, err := New(Options{BaseURL: api.apiURL(), Credentials: appCreds(), UnauthorizedHint: hint})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Access(t.Context(), fixtureReq())
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v\nwant  %s", err, tt.want)
			}
		})
	}
}
