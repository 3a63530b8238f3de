package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/idtable"
	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
)

// clearEnv unsets every DATACORE_ variable for the duration of the test.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, Prefix+"_") {
			t.Setenv(k, "") // restores the original value at cleanup
			os.Unsetenv(k)
		}
	}
}

// setEnv sets the given variables for the duration of the test.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// valid returns a valid configuration: the defaults, application credentials
// and one fixture.
func valid() *Config {
	c := Defaults()
	c.CredentialID = "cred-id"
	c.CredentialSecret = "s3cret-value"
	c.Fixtures = []string{"f1"}
	return c
}

// writeFile writes content to a new file in a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// varNames returns every variable name read from the environment.
func varNames() []string {
	var names []string
	for _, f := range fields() {
		names = append(names, f.name)
	}
	return names
}

func TestLoad(t *testing.T) {
	secretFile := writeFile(t, "secret", "  file-secret\n")
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "minimal application credentials",
			env:  map[string]string{"DATACORE_CREDENTIAL_ID": "id", "DATACORE_CREDENTIAL_SECRET": "sec", "DATACORE_FIXTURES": "f1"},
			check: func(t *testing.T, c *Config) {
				want := Defaults()
				want.CredentialID, want.CredentialSecret, want.Fixtures = "id", "sec", []string{"f1"}
				if err := want.Validate(); err != nil {
					t.Fatal(err)
				}
				if c.APIURL != "https://token.connect.sportradar.com/v1" {
					t.Errorf("APIURL = %q", c.APIURL)
				}
				if !reflect.DeepEqual(c, want) {
					t.Errorf("got  %v\nwant %v", c, want)
				}
			},
		},
		{
			name: "every kind of field",
			env: map[string]string{
				"DATACORE_ENV":                 "sandpit",
				"DATACORE_USER_IDENTITY_TOKEN": "uit",
				"DATACORE_APPLICATION_ID":      "app",
				"DATACORE_FIXTURES":            " f1 , f2,f1",
				"DATACORE_VENUES":              "v1",
				"DATACORE_FIXTURE_SCOPES":      "read:stream_events, read:response",
				"DATACORE_INCLUDE_PORT":        "true",
				"DATACORE_QOS":                 "0",
				"DATACORE_NATS_URL":            "nats://a:4222,nats://b:4222",
				"DATACORE_JETSTREAM":           "true",
				"DATACORE_STREAM":              "DATACORE",
				"DATACORE_HTTP_ADDR":           "",
				"DATACORE_LOG_LEVEL":           "DEBUG",
				"DATACORE_STOP_AFTER_FINAL":    "0",
				"DATACORE_MAX_INFLIGHT":        "64",
				"DATACORE_DEDUP_WINDOW":        "30s",
				"DATACORE_SHUTDOWN_TIMEOUT":    "3s",
			},
			check: func(t *testing.T, c *Config) {
				if c.APIURL != "https://token.dev.connect-nonprod.sportradar.dev/v1" {
					t.Errorf("APIURL = %q", c.APIURL)
				}
				if !slices.Equal(c.Fixtures, []string{"f1", "f2"}) || !slices.Equal(c.Venues, []string{"v1"}) {
					t.Errorf("Fixtures = %q, Venues = %q", c.Fixtures, c.Venues)
				}
				if !slices.Equal(c.FixtureScopes, []string{"read:stream_events", "read:response"}) {
					t.Errorf("FixtureScopes = %q", c.FixtureScopes)
				}
				if !c.IncludePort || c.QoS != 0 || !c.JetStream || c.Stream != "DATACORE" || c.HTTPAddr != "" {
					t.Errorf("IncludePort %v QoS %d JetStream %v Stream %q HTTPAddr %q", c.IncludePort, c.QoS, c.JetStream, c.Stream, c.HTTPAddr)
				}
				if !slices.Equal(c.NATSURLs, []string{"nats://a:4222", "nats://b:4222"}) {
					t.Errorf("NATSURLs = %q", c.NATSURLs)
				}
				if c.LogLevel != "debug" || c.Level() != slog.LevelDebug {
					t.Errorf("LogLevel = %q", c.LogLevel)
				}
				if c.StopAfterFinal != 0 || c.MaxInflight != 64 || c.DedupWindow != 30*time.Second || c.ShutdownTimeout != 3*time.Second {
					t.Errorf("StopAfterFinal %v MaxInflight %d DedupWindow %v ShutdownTimeout %v", c.StopAfterFinal, c.MaxInflight, c.DedupWindow, c.ShutdownTimeout)
				}
			},
		},
		{
			name: "secret file",
			env:  map[string]string{"DATACORE_CREDENTIAL_ID": "id", "DATACORE_CREDENTIAL_SECRET_FILE": secretFile, "DATACORE_VENUES": "v1"},
			check: func(t *testing.T, c *Config) {
				if c.CredentialSecret != "file-secret" {
					t.Errorf("CredentialSecret = %q, want the trimmed file content", c.CredentialSecret)
				}
				if err := c.Validate(); err != nil {
					t.Errorf("second Validate: %v", err)
				}
			},
		},
		{
			name: "dedup window 0 disables dedup",
			env:  map[string]string{"DATACORE_CREDENTIAL_ID": "id", "DATACORE_CREDENTIAL_SECRET": "sec", "DATACORE_FIXTURES": "f1", "DATACORE_DEDUP_WINDOW": "0"},
			check: func(t *testing.T, c *Config) {
				if c.DedupWindow != 0 {
					t.Errorf("DedupWindow = %v, want 0 (disabled)", c.DedupWindow)
				}
			},
		},
		{
			name: "admin token alone is enough",
			env:  map[string]string{"DATACORE_CREDENTIAL_ID": "id", "DATACORE_CREDENTIAL_SECRET": "sec", "DATACORE_ADMIN_TOKEN": "tok"},
			check: func(t *testing.T, c *Config) {
				if len(c.Fixtures) != 0 || c.AdminToken != "tok" {
					t.Errorf("Fixtures %q AdminToken set %v", c.Fixtures, c.AdminToken != "")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			setEnv(t, tt.env)
			c, err := Load()
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadErrors(t *testing.T) {
	base := map[string]string{"DATACORE_CREDENTIAL_ID": "id", "DATACORE_CREDENTIAL_SECRET": "sec", "DATACORE_FIXTURES": "f1"}
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
		wantMsg string
	}{
		{"qos not a number", map[string]string{"DATACORE_QOS": "one"}, "DATACORE_QOS", `must be an integer, got "one"`},
		{"qos out of range", map[string]string{"DATACORE_QOS": "2"}, "DATACORE_QOS", `must be 0 or 1, got "2"`},
		{"bad duration", map[string]string{"DATACORE_STOP_AFTER_FINAL": "15"}, "DATACORE_STOP_AFTER_FINAL", "must be a duration"},
		{"empty duration", map[string]string{"DATACORE_DEDUP_WINDOW": ""}, "DATACORE_DEDUP_WINDOW", "must be a duration"},
		{"negative dedup window", map[string]string{"DATACORE_DEDUP_WINDOW": "-1m"}, "DATACORE_DEDUP_WINDOW", "must not be negative (0 disables)"},
		{"bad bool", map[string]string{"DATACORE_JETSTREAM": "maybe"}, "DATACORE_JETSTREAM", `must be true or false, got "maybe"`},
		{"bad int", map[string]string{"DATACORE_MAX_INFLIGHT": "lots"}, "DATACORE_MAX_INFLIGHT", "must be an integer"},
		{"unknown env", map[string]string{"DATACORE_ENV": "staging"}, "DATACORE_ENV", `got "staging"`},
		{"no credentials", map[string]string{"DATACORE_CREDENTIAL_ID": "", "DATACORE_CREDENTIAL_SECRET": ""}, "DATACORE_CREDENTIAL_ID", "credentials are required"},
		{"nothing to follow", map[string]string{"DATACORE_FIXTURES": ""}, "DATACORE_FIXTURES", "nothing to follow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			setEnv(t, base)
			setEnv(t, tt.env)
			c, err := Load()
			if c != nil {
				t.Errorf("Load returned a config with an error")
			}
			checkError(t, err, tt.wantVar, tt.wantMsg)
		})
	}
}

// checkError checks that err is a *Error for wantVar whose message contains
// wantMsg and whose text is one line starting with the variable name.
func checkError(t *testing.T, err error, wantVar, wantMsg string) {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v (%T), want a *Error for %s", err, err, wantVar)
	}
	if ce.Var != wantVar {
		t.Errorf("Var = %q, want %q (error: %v)", ce.Var, wantVar, err)
	}
	if !slices.Contains(varNames(), ce.Var) {
		t.Errorf("Var %q is not a configuration variable", ce.Var)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, wantVar+": ") {
		t.Errorf("error %q does not start with %q", msg, wantVar+": ")
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q spans several lines", msg)
	}
	if !strings.Contains(msg, wantMsg) {
		t.Errorf("error %q does not contain %q", msg, wantMsg)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	certFile := writeFile(t, "cert.pem", "cert")
	keyFile := writeFile(t, "key.pem", "key")
	pki := natstest.NewPKI(t)
	nkey := natstest.NewNKeyUser(t)
	creds := natstest.NewOperator(t).CredsFile
	missing := filepath.Join(dir, "missing")
	secretLink := filepath.Join(dir, "secret-link")
	if err := os.Symlink(keyFile, secretLink); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	fifoLink := filepath.Join(dir, "fifo-link")
	if err := os.Symlink(fifo, fifoLink); err != nil {
		t.Fatal(err)
	}
	bigFile := writeFile(t, "big", strings.Repeat("x", 64<<10+1))
	limitFile := writeFile(t, "limit", strings.Repeat("x", 64<<10))
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantVar string // "" when valid
		wantMsg string
	}{
		{"defaults with credentials and a fixture", func(c *Config) {}, "", ""},

		// DATACORE_ENV and DATACORE_API_URL
		{"env nonprod", func(c *Config) { c.Env = "nonprod" }, "", ""},
		{"env is case-insensitive", func(c *Config) { c.Env = "Sandpit" }, "", ""},
		{"env unknown", func(c *Config) { c.Env = "prod" }, "DATACORE_ENV", `must be production, nonprod or sandpit, got "prod"`},
		{"env empty", func(c *Config) { c.Env = "" }, "DATACORE_ENV", "must be production"},
		{"api url override", func(c *Config) { c.APIURL = "http://127.0.0.1:9000/v1/" }, "", ""},
		{"api url relative", func(c *Config) { c.APIURL = "/v1" }, "DATACORE_API_URL", "absolute http or https URL"},
		{"api url no scheme", func(c *Config) { c.APIURL = "token.example.com/v1" }, "DATACORE_API_URL", "absolute http or https URL"},
		{"api url other scheme", func(c *Config) { c.APIURL = "ftp://example.com/v1" }, "DATACORE_API_URL", "absolute http or https URL"},
		{"api url with query", func(c *Config) { c.APIURL = "https://example.com/v1?x=1" }, "DATACORE_API_URL", "query"},
		{"api url unparsable", func(c *Config) { c.APIURL = "http://[::1" }, "DATACORE_API_URL", "absolute http or https URL"},
		{"api url with user and password", func(c *Config) { c.APIURL = "https://u:p@example.com/v1" }, "DATACORE_API_URL", `must not contain user information (user:password@), got "https://[set]@example.com/v1"`},
		{"api url with user only", func(c *Config) { c.APIURL = "https://tok@example.com/v1" }, "DATACORE_API_URL", "must not contain user information"},
		{"api url with empty query", func(c *Config) { c.APIURL = "https://example.com/v1?" }, "DATACORE_API_URL", "query"},

		// credentials
		{"no credentials", func(c *Config) { c.CredentialID, c.CredentialSecret = "", "" }, "DATACORE_CREDENTIAL_ID", "credentials are required"},
		{"credential id without secret", func(c *Config) { c.CredentialSecret = "" }, "DATACORE_CREDENTIAL_SECRET", "required with DATACORE_CREDENTIAL_ID"},
		{"secret without credential id", func(c *Config) { c.CredentialID = "" }, "DATACORE_CREDENTIAL_ID", "required with DATACORE_CREDENTIAL_SECRET"},
		{"secret and secret file", func(c *Config) { c.CredentialSecretFile = keyFile }, "DATACORE_CREDENTIAL_SECRET_FILE", "cannot be combined with DATACORE_CREDENTIAL_SECRET"},
		{"secret file", func(c *Config) { c.CredentialSecret, c.CredentialSecretFile = "", keyFile }, "", ""},
		{"secret file missing", func(c *Config) { c.CredentialSecret, c.CredentialSecretFile = "", missing }, "DATACORE_CREDENTIAL_SECRET_FILE", "cannot read the credential secret"},
		{"secret file is a directory", func(c *Config) { c.CredentialSecret, c.CredentialSecretFile = "", dir }, "DATACORE_CREDENTIAL_SECRET_FILE", "cannot read the credential secret"},
		{"secret file empty", func(c *Config) { c.CredentialSecret, c.CredentialSecretFile = "", writeFile(t, "empty", " \n") }, "DATACORE_CREDENTIAL_SECRET_FILE", "is empty"},
		{"secret file through a symbolic link", func(c *Config) { c.CredentialSecret, c.CredentialSecretFile = "", secretLink }, "", ""},
		{"secret file is dev zero", func(c *Config) { c.CredentialSecret, c.CredentialSecretFile = "", "/dev/zero" }, "DATACORE_CREDENTIAL_SECRET_FILE", "/dev/zero is not a regular file (a character device)"},
		{"secret file is a fifo", func(c *Config) { c.CredentialSecret, c.CredentialSecretFile = "", fifo }, "DATACORE_CREDENTIAL_SECRET_FILE", "is not a regular file (a named pipe)"},
		{"secret file is a link to a fifo", func(c *Config) { c.CredentialSecret, c.CredentialSecretFile = "", fifoLink }, "DATACORE_CREDENTIAL_SECRET_FILE", "is not a regular file (a named pipe)"},
		{"secret file too large", func(c *Config) { c.CredentialSecret, c.CredentialSecretFile = "", bigFile }, "DATACORE_CREDENTIAL_SECRET_FILE", "is larger than 64 KiB"},
		{"secret file at the size limit", func(c *Config) { c.CredentialSecret, c.CredentialSecretFile = "", limitFile }, "", ""},
		{"user credentials", func(c *Config) {
			c.CredentialID, c.CredentialSecret, c.UserIdentityToken, c.ApplicationID = "", "", "uit", "app"
		}, "", ""},
		{"user token without application id", func(c *Config) {
			c.CredentialID, c.CredentialSecret, c.UserIdentityToken = "", "", "uit"
		}, "DATACORE_APPLICATION_ID", "required with DATACORE_USER_IDENTITY_TOKEN"},
		{"application id without user token", func(c *Config) {
			c.CredentialID, c.CredentialSecret, c.ApplicationID = "", "", "app"
		}, "DATACORE_USER_IDENTITY_TOKEN", "required with DATACORE_APPLICATION_ID"},
		{"both kinds of credentials", func(c *Config) { c.UserIdentityToken, c.ApplicationID = "uit", "app" }, "DATACORE_USER_IDENTITY_TOKEN", "not both"},
		{"both kinds, partial", func(c *Config) { c.ApplicationID = "app" }, "DATACORE_USER_IDENTITY_TOKEN", "not both"},

		// DATACORE_SPORT
		{"sport empty", func(c *Config) { c.Sport = " " }, "DATACORE_SPORT", "must not be empty"},
		{"sport with space", func(c *Config) { c.Sport = "ice hockey" }, "DATACORE_SPORT", "whitespace"},

		// fixtures and venues
		{"fixture with odd but allowed characters", func(c *Config) { c.Fixtures = []string{"a.b*c>d"} }, "", ""},
		{"empty fixture", func(c *Config) { c.Fixtures = []string{"f1", " "} }, "DATACORE_FIXTURES", "empty ID at position 2"},
		{"fixture with slash", func(c *Config) { c.Fixtures = []string{"a/b"} }, "DATACORE_FIXTURES", `"a/b" contains '/'`},
		{"fixture with plus", func(c *Config) { c.Fixtures = []string{"a+"} }, "DATACORE_FIXTURES", `contains '+'`},
		{"fixture with hash", func(c *Config) { c.Fixtures = []string{"#"} }, "DATACORE_FIXTURES", `contains '#'`},
		{"fixture with inner space", func(c *Config) { c.Fixtures = []string{"a b"} }, "DATACORE_FIXTURES", `contains ' '`},
		{"fixture with control character", func(c *Config) { c.Fixtures = []string{"a\x00b"} }, "DATACORE_FIXTURES", `contains '\x00'`},
		{"venue with slash", func(c *Config) { c.Venues = []string{"v/1"} }, "DATACORE_VENUES", `"v/1" contains '/'`},
		{"empty venue", func(c *Config) { c.Venues = []string{""} }, "DATACORE_VENUES", "empty ID at position 1"},
		{"venues only", func(c *Config) { c.Fixtures, c.Venues = nil, []string{"v1"} }, "", ""},
		{"nothing to follow", func(c *Config) { c.Fixtures = nil }, "DATACORE_FIXTURES", "nothing to follow: set DATACORE_FIXTURES, DATACORE_VENUES or DATACORE_ORGANIZATIONS, or DATACORE_ADMIN_TOKEN"},
		{"admin token instead of fixtures", func(c *Config) { c.Fixtures, c.AdminToken = nil, "tok" }, "", ""},
		{"admin token without http", func(c *Config) { c.Fixtures, c.AdminToken, c.HTTPAddr = nil, "tok", "" }, "DATACORE_FIXTURES", "DATACORE_HTTP_ADDR is empty"},

		// scopes
		{"unknown but well-formed scope", func(c *Config) { c.FixtureScopes = []string{"read:stream_future"} }, "", ""},
		{"write scope", func(c *Config) { c.FixtureScopes = []string{"read:stream_events", "write:stream_events"} }, "DATACORE_FIXTURE_SCOPES", `"write:stream_events" is not a read scope`},
		{"scope without prefix", func(c *Config) { c.FixtureScopes = []string{"stream_events"} }, "DATACORE_FIXTURE_SCOPES", `"stream_events" is not a scope`},
		{"scope upper case", func(c *Config) { c.VenueScopes = []string{"read:Stream"} }, "DATACORE_VENUE_SCOPES", "is not a scope"},
		{"scope bare prefix", func(c *Config) { c.VenueScopes = []string{"read:"} }, "DATACORE_VENUE_SCOPES", "is not a scope"},
		{"empty scope in list", func(c *Config) { c.FixtureScopes = []string{"read:stream_events", ""} }, "DATACORE_FIXTURE_SCOPES", "empty scope at position 2"},
		{"no fixture scopes", func(c *Config) { c.FixtureScopes = nil }, "DATACORE_FIXTURE_SCOPES", "at least one scope"},
		{"no venue scopes", func(c *Config) { c.VenueScopes = []string{} }, "DATACORE_VENUE_SCOPES", "at least one scope"},

		// DATACORE_QOS
		{"qos 0", func(c *Config) { c.QoS = 0 }, "", ""},
		{"qos 2", func(c *Config) { c.QoS = 2 }, "DATACORE_QOS", `must be 0 or 1, got "2"`},
		{"qos negative", func(c *Config) { c.QoS = -1 }, "DATACORE_QOS", `must be 0 or 1, got "-1"`},

		// NATS
		{"no nats url", func(c *Config) { c.NATSURLs = nil }, "DATACORE_NATS_URL", "at least one NATS server"},
		{"empty nats url in list", func(c *Config) { c.NATSURLs = []string{"nats://a:4222", " "} }, "DATACORE_NATS_URL", "empty URL at position 2"},
		{"nats url with space", func(c *Config) { c.NATSURLs = []string{"nats://a b:4222"} }, "DATACORE_NATS_URL", "whitespace"},
		{"nats user and password", func(c *Config) { c.NATSUser, c.NATSPassword = "u", "p" }, "", ""},
		{"nats user without password", func(c *Config) { c.NATSUser = "u" }, "DATACORE_NATS_PASSWORD", "required with DATACORE_NATS_USER"},
		{"nats password without user", func(c *Config) { c.NATSPassword = "p" }, "DATACORE_NATS_USER", "required with DATACORE_NATS_PASSWORD"},
		{"nats token and user", func(c *Config) { c.NATSToken, c.NATSUser, c.NATSPassword = "t", "u", "p" }, "DATACORE_NATS_USER", "cannot be combined with DATACORE_NATS_TOKEN"},
		{"nats creds and nkey", func(c *Config) { c.NATSCreds, c.NATSNKey = creds, nkey.SeedFile }, "DATACORE_NATS_NKEY", "cannot be combined with DATACORE_NATS_CREDS"},
		{"nats creds file", func(c *Config) { c.NATSCreds = creds }, "", ""},
		{"nats nkey file", func(c *Config) { c.NATSNKey = nkey.SeedFile }, "", ""},
		{"nats creds file missing", func(c *Config) { c.NATSCreds = missing }, "DATACORE_NATS_CREDS", "cannot read the file"},
		{"nats nkey file missing", func(c *Config) { c.NATSNKey = missing }, "DATACORE_NATS_NKEY", "cannot read the file"},
		{"nats ca missing", func(c *Config) { c.NATSTLSCA = missing }, "DATACORE_NATS_TLS_CA", "cannot read the file"},
		{"nats tls cert and key", func(c *Config) { c.NATSTLSCert, c.NATSTLSKey, c.NATSTLSCA = pki.ClientCert, pki.ClientKey, pki.CAFile }, "", ""},
		{"nats tls cert without key", func(c *Config) { c.NATSTLSCert = certFile }, "DATACORE_NATS_TLS_KEY", "required with DATACORE_NATS_TLS_CERT"},
		{"nats tls key without cert", func(c *Config) { c.NATSTLSKey = keyFile }, "DATACORE_NATS_TLS_CERT", "required with DATACORE_NATS_TLS_KEY"},
		{"nats tls cert is a directory", func(c *Config) { c.NATSTLSCert, c.NATSTLSKey = dir, keyFile }, "DATACORE_NATS_TLS_CERT", "is not a regular file (a directory)"},
		{"nats creds file is a fifo", func(c *Config) { c.NATSCreds = fifo }, "DATACORE_NATS_CREDS", "is not a regular file (a named pipe)"},
		{"nats ca is a character device", func(c *Config) { c.NATSTLSCA = "/dev/zero" }, "DATACORE_NATS_TLS_CA", "is not a regular file (a character device)"},

		// subjects and JetStream
		{"multi-token prefix", func(c *Config) { c.SubjectPrefix = "org.sports.datacore" }, "", ""},
		{"empty prefix", func(c *Config) { c.SubjectPrefix = "" }, "DATACORE_SUBJECT_PREFIX", "dot-separated"},
		{"prefix with empty token", func(c *Config) { c.SubjectPrefix = "a..b" }, "DATACORE_SUBJECT_PREFIX", `got "a..b"`},
		{"prefix trailing dot", func(c *Config) { c.SubjectPrefix = "a." }, "DATACORE_SUBJECT_PREFIX", "dot-separated"},
		{"prefix wildcard", func(c *Config) { c.SubjectPrefix = "a.*" }, "DATACORE_SUBJECT_PREFIX", "dot-separated"},
		{"prefix full wildcard", func(c *Config) { c.SubjectPrefix = "a.>" }, "DATACORE_SUBJECT_PREFIX", "dot-separated"},
		{"prefix with space", func(c *Config) { c.SubjectPrefix = "a b" }, "DATACORE_SUBJECT_PREFIX", "dot-separated"},
		{"stream with jetstream", func(c *Config) { c.JetStream, c.Stream = true, "DATACORE" }, "", ""},
		{"stream without jetstream", func(c *Config) { c.Stream = "DATACORE" }, "DATACORE_STREAM", "needs DATACORE_JETSTREAM=true"},
		{"stream name with dot", func(c *Config) { c.JetStream, c.Stream = true, "a.b" }, "DATACORE_STREAM", "a stream name must not contain"},

		// HTTP and admin token
		{"http disabled", func(c *Config) { c.HTTPAddr = "" }, "", ""},
		{"http host and port", func(c *Config) { c.HTTPAddr = "127.0.0.1:0" }, "", ""},
		{"http ipv6", func(c *Config) { c.HTTPAddr = "[::1]:8080" }, "", ""},
		{"http no port", func(c *Config) { c.HTTPAddr = "localhost" }, "DATACORE_HTTP_ADDR", `must be host:port`},
		{"http bad port", func(c *Config) { c.HTTPAddr = ":http" }, "DATACORE_HTTP_ADDR", `got ":http"`},
		{"http port too big", func(c *Config) { c.HTTPAddr = ":70000" }, "DATACORE_HTTP_ADDR", "must be host:port"},
		{"admin token with space", func(c *Config) { c.AdminToken = "a b" }, "DATACORE_ADMIN_TOKEN", "whitespace"},

		// logs
		{"log level warn", func(c *Config) { c.LogLevel = "WARN" }, "", ""},
		{"log level unknown", func(c *Config) { c.LogLevel = "trace" }, "DATACORE_LOG_LEVEL", `must be debug, info, warn or error, got "trace"`},
		{"log format text", func(c *Config) { c.LogFormat = "text" }, "", ""},
		{"log format unknown", func(c *Config) { c.LogFormat = "logfmt" }, "DATACORE_LOG_FORMAT", `must be json or text, got "logfmt"`},

		// OAuth
		{"oauth complete", func(c *Config) {
			c.OAuthTokenURL, c.OAuthClientID, c.OAuthClientSecret, c.OAuthAudience = "https://auth.example.com/token", "cid", "csec", "aud"
		}, "", ""},
		{"oauth without secret", func(c *Config) {
			c.OAuthTokenURL, c.OAuthClientID = "https://auth.example.com/token", "cid"
		}, "DATACORE_OAUTH_CLIENT_SECRET", "set the token URL, client id and client secret together"},
		{"oauth without url", func(c *Config) { c.OAuthClientID, c.OAuthClientSecret = "cid", "csec" }, "DATACORE_OAUTH_TOKEN_URL", "together"},
		{"oauth without client id", func(c *Config) {
			c.OAuthTokenURL, c.OAuthClientSecret = "https://auth.example.com/token", "csec"
		}, "DATACORE_OAUTH_CLIENT_ID", "together"},
		{"oauth audience alone", func(c *Config) { c.OAuthAudience = "aud" }, "DATACORE_OAUTH_AUDIENCE", "needs DATACORE_OAUTH_TOKEN_URL"},
		{"oauth relative url", func(c *Config) { c.OAuthTokenURL, c.OAuthClientID, c.OAuthClientSecret = "/token", "cid", "csec" }, "DATACORE_OAUTH_TOKEN_URL", "absolute http or https URL"},
		{"oauth url with user info", func(c *Config) {
			c.OAuthTokenURL, c.OAuthClientID, c.OAuthClientSecret = "https://cid:csec@auth.example.com/token", "cid", "csec"
		}, "DATACORE_OAUTH_TOKEN_URL", `must not contain user information (user:password@), got "https://[set]@auth.example.com/token"`},

		// limits
		{"stop after final zero", func(c *Config) { c.StopAfterFinal = 0 }, "", ""},
		{"stop after final negative", func(c *Config) { c.StopAfterFinal = -time.Second }, "DATACORE_STOP_AFTER_FINAL", `must not be negative (0 never stops), got "-1s"`},
		{"max inflight one", func(c *Config) { c.MaxInflight = 1 }, "", ""},
		{"max inflight zero", func(c *Config) { c.MaxInflight = 0 }, "DATACORE_MAX_INFLIGHT", `must be at least 1, got "0"`},
		{"dedup window zero disables", func(c *Config) { c.DedupWindow = 0 }, "", ""},
		{"dedup window negative", func(c *Config) { c.DedupWindow = -time.Second }, "DATACORE_DEDUP_WINDOW", `must not be negative (0 disables), got "-1s"`},
		{"shutdown timeout zero", func(c *Config) { c.ShutdownTimeout = 0 }, "DATACORE_SHUTDOWN_TIMEOUT", "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(c)
			err := c.Validate()
			if tt.wantVar == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if err := c.Validate(); err != nil {
					t.Fatalf("second Validate: %v", err)
				}
				return
			}
			checkError(t, err, tt.wantVar, tt.wantMsg)
		})
	}
}

func TestValidateCompletes(t *testing.T) {
	tests := []struct {
		name  string
		c     func() *Config
		check func(t *testing.T, c *Config)
	}{
		{
			name: "api url from env",
			c: func() *Config {
				c := valid()
				c.Env = "nonprod"
				return c
			},
			check: func(t *testing.T, c *Config) {
				if want, _ := APIURLFor("nonprod"); c.APIURL != want || want == "" {
					t.Errorf("APIURL = %q, want %q", c.APIURL, want)
				}
			},
		},
		{
			name: "api url override keeps its value without trailing slash",
			c: func() *Config {
				c := valid()
				c.APIURL = "http://127.0.0.1:9000/v1/"
				return c
			},
			check: func(t *testing.T, c *Config) {
				if c.APIURL != "http://127.0.0.1:9000/v1" {
					t.Errorf("APIURL = %q", c.APIURL)
				}
			},
		},
		{
			name: "ids and scopes trimmed and deduplicated in order",
			c: func() *Config {
				c := valid()
				c.Fixtures = []string{" b", "a ", "b", "c"}
				c.Venues = []string{"v", " v "}
				c.FixtureScopes = []string{"read:response ", " read:stream_events", "read:response"}
				c.NATSURLs = []string{" nats://a:1", "nats://a:1"}
				return c
			},
			check: func(t *testing.T, c *Config) {
				if !slices.Equal(c.Fixtures, []string{"b", "a", "c"}) {
					t.Errorf("Fixtures = %q", c.Fixtures)
				}
				if !slices.Equal(c.Venues, []string{"v"}) {
					t.Errorf("Venues = %q", c.Venues)
				}
				if !slices.Equal(c.FixtureScopes, []string{"read:response", "read:stream_events"}) {
					t.Errorf("FixtureScopes = %q", c.FixtureScopes)
				}
				if !slices.Equal(c.NATSURLs, []string{"nats://a:1"}) {
					t.Errorf("NATSURLs = %q", c.NATSURLs)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c()
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestErrorsNeverContainSecrets(t *testing.T) {
	const secret = "TOPSECRET-value"
	tests := []struct {
		name   string
		mutate func(c *Config)
	}{
		{"credential secret with secret file", func(c *Config) { c.CredentialSecret, c.CredentialSecretFile = secret, "/nonexistent" }},
		{"credential secret without id", func(c *Config) { c.CredentialID, c.CredentialSecret = "", secret }},
		{"user token without application id", func(c *Config) { c.CredentialID, c.CredentialSecret, c.UserIdentityToken = "", "", secret }},
		{"user token with application credentials", func(c *Config) { c.UserIdentityToken = secret }},
		{"admin token with whitespace", func(c *Config) { c.AdminToken = secret + " x" }},
		{"nats password without user", func(c *Config) { c.NATSPassword = secret }},
		{"nats token with creds", func(c *Config) { c.NATSToken, c.NATSCreds = secret, "/nonexistent" }},
		{"nats url with password and space", func(c *Config) { c.NATSURLs = []string{"nats://u:" + secret + "@a b:4222"} }},
		{"api url with password", func(c *Config) { c.APIURL = "ftp://u:" + secret + "@example.com/v1" }},
		{"oauth secret without url", func(c *Config) { c.OAuthClientID, c.OAuthClientSecret = "cid", secret }},
		{"oauth token url with password", func(c *Config) {
			c.OAuthTokenURL, c.OAuthClientID, c.OAuthClientSecret = "ftp://u:"+secret+"@x/token", "cid", secret
		}},
		{"secret file content", func(c *Config) {
			c.CredentialSecret, c.CredentialSecretFile = "", filepath.Join(t.TempDir(), "none")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			c.CredentialSecret = secret
			tt.mutate(c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate succeeded, want an error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
}

func TestSecretFileError(t *testing.T) {
	c := valid()
	c.CredentialSecret, c.CredentialSecretFile = "", filepath.Join(t.TempDir(), "none")
	err := c.Validate()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
}

func TestError(t *testing.T) {
	inner := errors.New("boom")
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"message only", &Error{Var: "DATACORE_QOS", Msg: `must be 0 or 1, got "2"`}, `DATACORE_QOS: must be 0 or 1, got "2"`},
		{"with cause", &Error{Var: "DATACORE_NATS_CREDS", Msg: "cannot read the file", Err: inner}, "DATACORE_NATS_CREDS: cannot read the file: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if tt.err.Err != nil && !errors.Is(tt.err, tt.err.Err) {
				t.Errorf("errors.Is does not find the cause")
			}
		})
	}
}

// TestIDsFromTable checks DATACORE_FIXTURES and DATACORE_VENUES against the
// ID table shared with fixtures and httpapi: config applies fixtures.ValidateID
// to each trimmed entry and names the variable.
func TestIDsFromTable(t *testing.T) {
	for _, tc := range idtable.Load(t) {
		if strings.ContainsAny(tc.ID, ",\x00") {
			continue // a comma splits the list; the environment cannot hold NUL
		}
		for _, name := range []string{"DATACORE_FIXTURES", "DATACORE_VENUES"} {
			t.Run(tc.Name+"/"+name, func(t *testing.T) {
				clearEnv(t)
				setEnv(t, map[string]string{"DATACORE_CREDENTIAL_ID": "id", "DATACORE_CREDENTIAL_SECRET": "sec", name: tc.ID})
				c, err := Load()
				if !tc.EnvValid {
					if tc.ID == "" {
						checkError(t, err, "DATACORE_FIXTURES", "nothing to follow")
						return
					}
					checkError(t, err, name, "ID at position 1")
					if !errors.Is(err, fixtures.ErrInvalidID) {
						t.Errorf("error %v does not wrap fixtures.ErrInvalidID", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				got := c.Fixtures
				if name == "DATACORE_VENUES" {
					got = c.Venues
				}
				if want := []string{strings.TrimSpace(tc.ID)}; !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			})
		}
	}
}

func TestKnownScopesAreValid(t *testing.T) {
	scopes := KnownScopes()
	if len(scopes) != 11 {
		t.Errorf("got %d known scopes, want 11", len(scopes))
	}
	if _, err := cleanScopes("DATACORE_FIXTURE_SCOPES", scopes); err != nil {
		t.Errorf("known scopes rejected: %v", err)
	}
	scopes[0] = "changed"
	if KnownScopes()[0] == "changed" {
		t.Error("KnownScopes returns the package's own slice")
	}
}

func TestLevel(t *testing.T) {
	tests := []struct {
		level string
		want  slog.Level
	}{
		{"debug", slog.LevelDebug}, {"info", slog.LevelInfo}, {"warn", slog.LevelWarn}, {"error", slog.LevelError}, {"", slog.LevelInfo},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			c := Config{LogLevel: tt.level}
			if got := c.Level(); got != tt.want {
				t.Errorf("Level() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEveryFieldIsDocumented(t *testing.T) {
	var usage, md bytes.Buffer
	if err := Usage(&usage); err != nil {
		t.Fatal(err)
	}
	if err := Markdown(&md); err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeFor[Config]()
	seen := map[string]bool{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			key := f.Tag.Get("envconfig")
			if key == "" {
				t.Fatalf("field %s has no envconfig tag naming its variable", f.Name)
			}
			name := Prefix + "_" + key
			if seen[name] {
				t.Errorf("variable %s is read by two fields", name)
			}
			seen[name] = true
			if f.Tag.Get("desc") == "" {
				t.Errorf("field %s (%s) has no desc tag", f.Name, name)
			}
			if !strings.Contains(usage.String(), "\n  "+name+" ") {
				t.Errorf("Usage does not list %s", name)
			}
			if !strings.Contains(md.String(), "\n| "+name+" | ") {
				t.Errorf("Markdown does not list %s", name)
			}
			if def := f.Tag.Get("default"); def != "" && !strings.Contains(md.String(), "| "+escapeMarkdown(def)+" |") {
				t.Errorf("Markdown does not show the default %q of %s", def, name)
			}
		})
	}
	if got, want := strings.Count(md.String(), "\n| DATACORE_"), len(seen); got != want {
		t.Errorf("Markdown has %d rows, want %d", got, want)
	}
}

func TestMarkdownFormat(t *testing.T) {
	var md bytes.Buffer
	if err := Markdown(&md); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(md.String(), "\n"), "\n")
	if lines[0] != "| variable | default | meaning |" || lines[1] != "|---|---|---|" {
		t.Errorf("header = %q", lines[:2])
	}
	for _, want := range []string{
		"| DATACORE_ENV | production | production, nonprod or sandpit: picks the access host |",
		"| DATACORE_API_URL | from DATACORE_ENV | access API base, including /v1 |",
		"| DATACORE_STOP_AFTER_FINAL | 15m |",
		"| DATACORE_MAX_INFLIGHT | 1024 | extension:",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	for _, l := range lines {
		if strings.Count(l, " | ")+2 != 4 && strings.HasPrefix(l, "| DATACORE_") {
			t.Errorf("row %q does not have three cells", l)
		}
	}
}

func TestDefaultsMatchLoad(t *testing.T) {
	clearEnv(t)
	setEnv(t, map[string]string{"DATACORE_CREDENTIAL_ID": "id", "DATACORE_CREDENTIAL_SECRET": "sec", "DATACORE_VENUES": "v"})
	loaded, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	d.CredentialID, d.CredentialSecret, d.Venues = "id", "sec", []string{"v"}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded, d) {
		t.Errorf("Load  %v\nDefaults %v", loaded, d)
	}
}

func TestRedacted(t *testing.T) {
	c := valid()
	c.CredentialSecret = "cred-secret-1"
	c.AdminToken = "admin-token-2"
	c.NATSURLs = []string{"nats://user:nats-pass-3@a:4222", "nats://nats-token-4@b:4222", "nats://c:4222"}
	c.OAuthTokenURL, c.OAuthClientID, c.OAuthClientSecret = "https://auth.example.com/token", "cid", "oauth-secret-5"
	secrets := []string{"cred-secret-1", "admin-token-2", "nats-pass-3", "nats-token-4", "oauth-secret-5"}

	r := c.Redacted()
	if r.CredentialSecret != "[set]" || r.AdminToken != "[set]" || r.OAuthClientSecret != "[set]" {
		t.Errorf("secrets not replaced: %+v", r)
	}
	if r.UserIdentityToken != "" || r.NATSPassword != "" {
		t.Errorf("unset secrets should stay empty")
	}
	if want := []string{"nats://[set]@a:4222", "nats://[set]@b:4222", "nats://c:4222"}; !slices.Equal(r.NATSURLs, want) {
		t.Errorf("NATSURLs = %q, want %q", r.NATSURLs, want)
	}
	if c.CredentialSecret != "cred-secret-1" || c.NATSURLs[0] != "nats://user:nats-pass-3@a:4222" {
		t.Error("Redacted changed the original")
	}

	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	logger.Info("config", "value", *c, "ptr", c)
	outputs := map[string]string{
		"LogValue": logs.String(),
		"String":   c.String(),
		"%v":       fmt.Sprintf("%v", *c),
		"%+v ptr":  fmt.Sprintf("%+v", c),
	}
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s output contains secret %q: %s", name, s, out)
			}
		}
	}
	if !strings.Contains(logs.String(), `"DATACORE_ADMIN_TOKEN":"[set]"`) || !strings.Contains(logs.String(), `"DATACORE_QOS":1`) {
		t.Errorf("log output lacks the redacted config: %s", logs.String())
	}
}

// TestUnauthorizedHint checks the hint handed to access for a 401: it names
// the variables of the credentials in use.
func TestUnauthorizedHint(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"application", func(c *Config) {}, "check DATACORE_CREDENTIAL_ID and DATACORE_CREDENTIAL_SECRET"},
		{"individual user", func(c *Config) { c.CredentialID, c.UserIdentityToken = "", "uit" },
			"check DATACORE_USER_IDENTITY_TOKEN and DATACORE_APPLICATION_ID"},
		{"with oauth", func(c *Config) { c.OAuthTokenURL = "https://auth.example.com/token" },
			"check DATACORE_CREDENTIAL_ID and DATACORE_CREDENTIAL_SECRET, and the DATACORE_OAUTH_* settings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			c.CredentialID = "id"
			tt.set(c)
			if got := c.UnauthorizedHint(); got != tt.want {
				t.Errorf("UnauthorizedHint = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestNATSAuthHint checks the hint handed to sink for a refused NATS login:
// it names the variables of the method in use.
func TestNATSAuthHint(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"creds", func(c *Config) { c.NATSCreds = "/f" }, "DATACORE_NATS_CREDS"},
		{"nkey", func(c *Config) { c.NATSNKey = "/f" }, "DATACORE_NATS_NKEY"},
		{"token", func(c *Config) { c.NATSToken = "t" }, "check DATACORE_NATS_TOKEN against the server's authorization token"},
		{"user", func(c *Config) { c.NATSUser, c.NATSPassword = "u", "p" }, "check DATACORE_NATS_USER and DATACORE_NATS_PASSWORD against the server's users"},
		{"none", func(c *Config) {}, "none is configured: set DATACORE_NATS_USER/DATACORE_NATS_PASSWORD, DATACORE_NATS_TOKEN, DATACORE_NATS_CREDS or DATACORE_NATS_NKEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			tt.set(c)
			if got := c.NATSAuthHint(); !strings.Contains(got, tt.want) {
				t.Errorf("NATSAuthHint = %q, want it to contain %q", got, tt.want)
			}
		})
	}
}
