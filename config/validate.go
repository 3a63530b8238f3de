package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/cluster"
	"github.com/datacore-bridge/datacore-bridge/discovery"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/redact"
	"github.com/datacore-bridge/datacore-bridge/mqttclient"
	"github.com/datacore-bridge/datacore-bridge/sink"
)

// knownScopes are the read scopes documented by Datacore.
var knownScopes = []string{
	"read:stream_events",
	"read:stream_statistics",
	"read:stream_status",
	"read:stream_play_by_play",
	"read:stream_persons",
	"read:stream_persons_catchup",
	"read:stream_scoreboard",
	"read:stream_tracking",
	"read:stream_biometrics",
	"read:stream_statistics_periods",
	"read:response",
}

// scopeRE is the shape of a read scope.
var scopeRE = regexp.MustCompile(`^read:[a-z0-9_]+$`)

// KnownScopes returns the read scopes documented by Datacore. Validate accepts
// other well-formed read scopes too.
func KnownScopes() []string { return slices.Clone(knownScopes) }

// APIURLFor returns the access API base (including /v1) for a DATACORE_ENV
// value, and false for an unknown one (the rule is access.BaseURLFor's).
func APIURLFor(env string) (string, bool) {
	u, err := access.BaseURLFor(env)
	return u, err == nil
}

// Validate completes c and checks every rule, returning the first problem as a
// *Error. Completing means: DATACORE_ENV, log level and format are lower-cased;
// the API URL is derived from DATACORE_ENV unless set, and loses a trailing '/';
// the credential secret is read from DATACORE_CREDENTIAL_SECRET_FILE (surrounding
// whitespace trimmed); fixture and venue IDs, scopes and NATS URLs are trimmed and
// deduplicated. Validate may be called again on the result.
func (c *Config) Validate() error {
	checks := []func() error{
		c.checkEnv,
		c.checkCredentials,
		c.checkSport,
		c.checkIDs,
		c.checkScopes,
		c.checkQoS,
		c.checkNATS,
		c.checkSubjects,
		c.checkHTTP,
		c.checkDiscovery,
		c.checkCluster,
		c.checkFollow,
		c.checkLog,
		c.checkOAuth,
		c.checkLimits,
		c.checkCapacity,
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// Level returns the slog level named by LogLevel (info when it is not valid).
func (c *Config) Level() slog.Level {
	switch strings.ToLower(c.LogLevel) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (c *Config) checkEnv() error {
	c.Env = strings.ToLower(strings.TrimSpace(c.Env))
	base, ok := APIURLFor(c.Env)
	if !ok {
		return errorf("DATACORE_ENV", "must be production, nonprod or sandpit, got %q", c.Env)
	}
	if strings.TrimSpace(c.APIURL) == "" {
		c.APIURL = base
		return nil
	}
	base, err := access.CheckBaseURL(strings.TrimSpace(c.APIURL))
	if err != nil {
		return errorf("DATACORE_API_URL", "%v, got %q", err, redact.URL(c.APIURL))
	}
	c.APIURL = base
	return nil
}

func (c *Config) checkCredentials() error {
	pending := c.CredentialSecretFile != "" && !c.secretFromFile
	if pending && c.CredentialSecret != "" {
		return errorf("DATACORE_CREDENTIAL_SECRET_FILE", "cannot be combined with DATACORE_CREDENTIAL_SECRET: set one of them")
	}
	// The rule for credentials is access's; a secret file not read yet
	// stands for the secret it holds.
	creds := c.accessCredentials()
	if pending {
		creds.CredentialSecret = "(from file)"
	}
	if err := creds.Validate(); err != nil {
		return credentialsError(err)
	}
	if pending {
		b, err := readSecretFile(c.CredentialSecretFile)
		if err != nil {
			return &Error{Var: "DATACORE_CREDENTIAL_SECRET_FILE", Msg: "cannot read the credential secret", Err: err}
		}
		secret := strings.TrimSpace(string(b))
		if secret == "" {
			return errorf("DATACORE_CREDENTIAL_SECRET_FILE", "file %q is empty", c.CredentialSecretFile)
		}
		c.CredentialSecret = secret
		c.secretFromFile = true
	}
	return nil
}

// accessCredentials returns the credentials as access takes them.
func (c *Config) accessCredentials() access.Credentials {
	return access.Credentials{
		CredentialID:      c.CredentialID,
		CredentialSecret:  c.CredentialSecret,
		UserIdentityToken: c.UserIdentityToken,
		ApplicationID:     c.ApplicationID,
	}
}

// credentialVars names the variable of each access.Credentials field, with
// what to say when it is the empty half of a pair.
var credentialVars = map[string]struct{ name, missing string }{
	"CredentialID":      {"DATACORE_CREDENTIAL_ID", "required with DATACORE_CREDENTIAL_SECRET"},
	"CredentialSecret":  {"DATACORE_CREDENTIAL_SECRET", "required with DATACORE_CREDENTIAL_ID (or set DATACORE_CREDENTIAL_SECRET_FILE)"},
	"UserIdentityToken": {"DATACORE_USER_IDENTITY_TOKEN", "required with DATACORE_APPLICATION_ID"},
	"ApplicationID":     {"DATACORE_APPLICATION_ID", "required with DATACORE_USER_IDENTITY_TOKEN"},
}

// credentialsError turns an error of access.Credentials.Validate into a
// *Error naming the variable.
func credentialsError(err error) error {
	var ce *access.CredentialsError
	if !errors.As(err, &ce) {
		return &Error{Var: "DATACORE_CREDENTIAL_ID", Msg: "unusable credentials", Err: err}
	}
	v, ok := credentialVars[ce.Field]
	if !ok {
		v.name = "DATACORE_CREDENTIAL_ID"
	}
	switch {
	case errors.Is(err, access.ErrMixedCredentials):
		return errorf("DATACORE_USER_IDENTITY_TOKEN", "cannot be combined with DATACORE_CREDENTIAL_ID: set application credentials or individual-user credentials, not both")
	case errors.Is(err, access.ErrNoCredentials):
		return errorf("DATACORE_CREDENTIAL_ID", "credentials are required: set DATACORE_CREDENTIAL_ID with DATACORE_CREDENTIAL_SECRET (or DATACORE_CREDENTIAL_SECRET_FILE), or DATACORE_USER_IDENTITY_TOKEN with DATACORE_APPLICATION_ID")
	case errors.Is(err, access.ErrIncompleteCredentials) && v.missing != "":
		return errorf(v.name, "%s", v.missing)
	}
	return &Error{Var: v.name, Msg: "unusable credentials", Err: err}
}

// NATSAuthHint is what to check when NATS refuses the credentials
// (sink.ConnectOptions.AuthHint): the variables of the method in use.
func (c *Config) NATSAuthHint() string {
	switch {
	case c.NATSCreds != "":
		return "check the credentials file (DATACORE_NATS_CREDS): its user JWT must be signed by an account the server trusts and not be expired or revoked"
	case c.NATSNKey != "":
		return "check the nkey seed file (DATACORE_NATS_NKEY): its public key must be a user in the server's configuration"
	case c.NATSToken != "":
		return "check DATACORE_NATS_TOKEN against the server's authorization token"
	case c.NATSUser != "":
		return "check DATACORE_NATS_USER and DATACORE_NATS_PASSWORD against the server's users"
	}
	return "the server requires authentication and none is configured: set DATACORE_NATS_USER/DATACORE_NATS_PASSWORD, DATACORE_NATS_TOKEN, DATACORE_NATS_CREDS or DATACORE_NATS_NKEY"
}

// UnauthorizedHint is what to check when the access API rejects the
// credentials (access.Options.UnauthorizedHint): the variables in use.
func (c *Config) UnauthorizedHint() string {
	hint := "check DATACORE_CREDENTIAL_ID and DATACORE_CREDENTIAL_SECRET"
	if c.UserIdentityToken != "" || c.ApplicationID != "" {
		hint = "check DATACORE_USER_IDENTITY_TOKEN and DATACORE_APPLICATION_ID"
	}
	if c.OAuthTokenURL != "" {
		hint += ", and the DATACORE_OAUTH_* settings"
	}
	return hint
}

// maxSecretFileSize is the largest credential secret file read; a secret is
// a few dozen bytes.
const maxSecretFileSize = 64 << 10

// readSecretFile reads a small regular file (symbolic links followed, as
// Kubernetes mounts secrets). It opens without blocking and refuses what is
// not a regular file before reading, so that a FIFO cannot hang the start and
// a device such as /dev/zero cannot fill the memory; a file over
// maxSecretFileSize is an error, never read whole. Errors name the path but
// never contain the content.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s): point it at a file holding the secret", path, fileType(st.Mode()))
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSecretFileSize {
		return nil, fmt.Errorf("%s is larger than %d KiB: it should hold only the secret", path, maxSecretFileSize>>10)
	}
	return b, nil
}

// fileType names the type of a file that is not regular, for errors.
func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "mode " + m.String()
}

func (c *Config) checkSport() error {
	c.Sport = strings.TrimSpace(c.Sport)
	if c.Sport == "" {
		return errorf("DATACORE_SPORT", "must not be empty")
	}
	if strings.IndexFunc(c.Sport, isSpaceOrControl) >= 0 {
		return errorf("DATACORE_SPORT", "must not contain whitespace or control characters, got %q", c.Sport)
	}
	return nil
}

func (c *Config) checkIDs() error {
	var err error
	if c.Fixtures, err = cleanIDs("DATACORE_FIXTURES", c.Fixtures); err != nil {
		return err
	}
	c.Venues, err = cleanIDs("DATACORE_VENUES", c.Venues)
	return err
}

// cleanIDs trims and deduplicates a list of fixture or venue IDs, keeping the
// first occurrence, and checks each with fixtures.ValidateID, the one rule for
// IDs (the admin API applies it too, without trimming).
func cleanIDs(name string, ids []string) ([]string, error) {
	out := make([]string, 0, len(ids))
	for i, raw := range ids {
		id := strings.TrimSpace(raw)
		if id == "" {
			return nil, errorf(name, "empty ID at position %d (look for a stray comma)", i+1)
		}
		if err := fixtures.ValidateID(id); err != nil {
			return nil, &Error{Var: name, Msg: fmt.Sprintf("ID at position %d", i+1), Err: err}
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

func (c *Config) checkScopes() error {
	var err error
	if c.FixtureScopes, err = cleanScopes("DATACORE_FIXTURE_SCOPES", c.FixtureScopes); err != nil {
		return err
	}
	c.VenueScopes, err = cleanScopes("DATACORE_VENUE_SCOPES", c.VenueScopes)
	return err
}

// cleanScopes trims and deduplicates a list of scopes and checks that each is a
// well-formed read scope.
func cleanScopes(name string, scopes []string) ([]string, error) {
	out := make([]string, 0, len(scopes))
	for i, raw := range scopes {
		s := strings.TrimSpace(raw)
		switch {
		case s == "":
			return nil, errorf(name, "empty scope at position %d (look for a stray comma)", i+1)
		case strings.HasPrefix(s, "write:"):
			return nil, errorf(name, "%q is not a read scope: the bridge only subscribes to read: scopes", s)
		case !scopeRE.MatchString(s):
			return nil, errorf(name, "%q is not a scope: want read: followed by lower-case letters, digits or '_', e.g. read:stream_events", s)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, errorf(name, "at least one scope is required")
	}
	return out, nil
}

func (c *Config) checkQoS() error {
	if mqttclient.CheckQoS(c.QoS) != nil {
		return errorf("DATACORE_QOS", "must be 0 or 1, got %q", strconv.Itoa(c.QoS))
	}
	return nil
}

func (c *Config) checkNATS() error {
	urls := make([]string, 0, len(c.NATSURLs))
	for i, raw := range c.NATSURLs {
		u := strings.TrimSpace(raw)
		if u == "" {
			return errorf("DATACORE_NATS_URL", "empty URL at position %d (look for a stray comma)", i+1)
		}
		if strings.IndexFunc(u, isSpaceOrControl) >= 0 {
			return errorf("DATACORE_NATS_URL", "URL %q contains whitespace", redact.URL(u))
		}
		if !slices.Contains(urls, u) {
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 {
		return errorf("DATACORE_NATS_URL", "at least one NATS server is required")
	}
	c.NATSURLs = urls

	// The rules for URLs, authentication and TLS live in sink: first those
	// that need no file, then config's own file checks, then sink's.
	o := sink.ConnectOptions{
		URLs: strings.Join(c.NATSURLs, ","), CredsFile: c.NATSCreds, NKeyFile: c.NATSNKey,
		Token: c.NATSToken, User: c.NATSUser, Password: c.NATSPassword,
		TLSCA: c.NATSTLSCA, TLSCert: c.NATSTLSCert, TLSKey: c.NATSTLSKey,
	}
	if err := natsOptionError(o.Validate()); err != nil {
		return err
	}
	files := []struct{ name, path string }{
		{"DATACORE_NATS_CREDS", c.NATSCreds},
		{"DATACORE_NATS_NKEY", c.NATSNKey},
		{"DATACORE_NATS_TLS_CA", c.NATSTLSCA},
		{"DATACORE_NATS_TLS_CERT", c.NATSTLSCert},
		{"DATACORE_NATS_TLS_KEY", c.NATSTLSKey},
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if err := checkReadableFile(f.path); err != nil {
			return &Error{Var: f.name, Msg: "cannot read the file", Err: err}
		}
	}
	return natsOptionError(o.CheckFiles())
}

// natsOptionError turns an error of sink.ConnectOptions' checks into a *Error
// naming the variable of the field at fault.
func natsOptionError(err error) error {
	if err == nil {
		return nil
	}
	var oe *sink.OptionError
	if !errors.As(err, &oe) {
		return &Error{Var: "DATACORE_NATS_URL", Msg: "unusable NATS options", Err: err}
	}
	name := natsVar(oe.Option)
	switch {
	case errors.Is(err, sink.ErrConflictingOptions):
		return errorf(name, "cannot be combined with %s: choose one way to authenticate to NATS", natsVar(oe.Other))
	case errors.Is(err, sink.ErrMissingOption):
		return errorf(name, "required with %s", natsVar(oe.Other))
	}
	return &Error{Var: name, Msg: strings.TrimPrefix(oe.Err.Error(), sink.ErrInvalidOptions.Error()+": ")}
}

// natsVar names the variable of a sink.ConnectOptions field.
func natsVar(option string) string {
	if name, ok := natsOptionVars[option]; ok {
		return name
	}
	return "DATACORE_NATS_URL"
}

// natsOptionVars names the variable of each sink.ConnectOptions field.
var natsOptionVars = map[string]string{
	"URLs":      "DATACORE_NATS_URL",
	"CredsFile": "DATACORE_NATS_CREDS",
	"NKeyFile":  "DATACORE_NATS_NKEY",
	"Token":     "DATACORE_NATS_TOKEN",
	"User":      "DATACORE_NATS_USER",
	"Password":  "DATACORE_NATS_PASSWORD",
	"TLSCA":     "DATACORE_NATS_TLS_CA",
	"TLSCert":   "DATACORE_NATS_TLS_CERT",
	"TLSKey":    "DATACORE_NATS_TLS_KEY",
}

// maxNATSFileSize bounds the NATS credential, key and certificate files: a
// larger one is not what the variable should point at.
const maxNATSFileSize = 1 << 20

// checkReadableFile checks that path is a regular file (symbolic links
// followed) of at most maxNATSFileSize bytes. It opens without blocking, so a
// FIFO cannot hang the start, and checks the type before anything reads it.
func checkReadableFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%s)", path, fileType(st.Mode()))
	}
	if st.Size() > maxNATSFileSize {
		return fmt.Errorf("%s is larger than %d MiB", path, maxNATSFileSize>>20)
	}
	return nil
}

func (c *Config) checkSubjects() error {
	c.SubjectPrefix = strings.TrimSpace(c.SubjectPrefix)
	if err := sink.ValidatePrefix(c.SubjectPrefix); err != nil {
		return errorf("DATACORE_SUBJECT_PREFIX", "must be dot-separated non-empty tokens without whitespace, '*' or '>', got %q", c.SubjectPrefix)
	}
	c.Stream = strings.TrimSpace(c.Stream)
	if c.Stream == "" {
		return nil
	}
	if !c.JetStream {
		return errorf("DATACORE_STREAM", "needs DATACORE_JETSTREAM=true")
	}
	if strings.ContainsAny(c.Stream, ".*>/\\") || strings.IndexFunc(c.Stream, isSpaceOrControl) >= 0 {
		return errorf("DATACORE_STREAM", "a stream name must not contain whitespace, '.', '*', '>', '/' or '\\', got %q", c.Stream)
	}
	return nil
}

func (c *Config) checkHTTP() error {
	c.HTTPAddr = strings.TrimSpace(c.HTTPAddr)
	if c.HTTPAddr != "" {
		_, port, err := net.SplitHostPort(c.HTTPAddr)
		n, perr := strconv.ParseUint(port, 10, 16)
		if err != nil || perr != nil || (port != "0" && n == 0) {
			return errorf("DATACORE_HTTP_ADDR", "must be host:port (e.g. :8080 or 127.0.0.1:8080), or empty to disable, got %q", c.HTTPAddr)
		}
	}
	if c.AdminToken != "" && strings.IndexFunc(c.AdminToken, isSpaceOrControl) >= 0 {
		return errorf("DATACORE_ADMIN_TOKEN", "must not contain whitespace or control characters")
	}
	return nil
}

// minDiscoverInterval is the shortest DATACORE_DISCOVER_INTERVAL.
const minDiscoverInterval = time.Second

// checkDiscovery checks the organizations (discovery.ValidateOrganization),
// derives the REST URL from DATACORE_ENV unless set, and checks the interval
// and the look-ahead.
func (c *Config) checkDiscovery() error {
	orgs := make([]string, 0, len(c.Organizations))
	for i, raw := range c.Organizations {
		id := strings.TrimSpace(raw)
		if id == "" {
			return errorf("DATACORE_ORGANIZATIONS", "empty ID at position %d (look for a stray comma)", i+1)
		}
		if err := discovery.ValidateOrganization(id); err != nil {
			return &Error{Var: "DATACORE_ORGANIZATIONS", Msg: fmt.Sprintf("ID at position %d", i+1), Err: err}
		}
		if !slices.Contains(orgs, id) {
			orgs = append(orgs, id)
		}
	}
	c.Organizations = orgs
	if strings.TrimSpace(c.RESTURL) == "" {
		u, err := access.RESTURLFor(c.Env)
		if err != nil {
			return &Error{Var: "DATACORE_ENV", Msg: "no REST API for it", Err: err}
		}
		c.RESTURL = u
	} else {
		u, err := discovery.CheckBaseURL(strings.TrimSpace(c.RESTURL))
		if err != nil {
			return errorf("DATACORE_REST_URL", "%v, got %q", err, redact.URL(c.RESTURL))
		}
		c.RESTURL = u
	}
	if c.DiscoverInterval < minDiscoverInterval {
		return errorf("DATACORE_DISCOVER_INTERVAL", "must be at least %s, got %s", minDiscoverInterval, c.DiscoverInterval)
	}
	if c.DiscoverAhead <= 0 {
		return errorf("DATACORE_DISCOVER_AHEAD", "must be positive, got %s", c.DiscoverAhead)
	}
	return nil
}

// Bounds of DATACORE_LEASE_TTL: below a second, renewals (a third of it
// apart) race the KV round trip; above five minutes, a killed process leaves
// its games unfollowed for too long to be a mistake.
const (
	minLeaseTTL = time.Second
	maxLeaseTTL = 5 * time.Minute
)

// checkCluster checks the cluster-mode variables: they are used together, or
// not at all.
func (c *Config) checkCluster() error {
	c.Cluster = strings.TrimSpace(c.Cluster)
	c.Instance = strings.TrimSpace(c.Instance)
	if c.Cluster == "" {
		switch {
		case c.Replicas != 1:
			return errorf("DATACORE_REPLICAS", "is %d but DATACORE_CLUSTER is unset: replicas share the work only in cluster mode; set DATACORE_CLUSTER or unset DATACORE_REPLICAS", c.Replicas)
		case c.Instance != "":
			return errorf("DATACORE_INSTANCE", "is set but DATACORE_CLUSTER is unset: it names a process only in cluster mode; set DATACORE_CLUSTER or unset DATACORE_INSTANCE")
		case c.KVReplicas != 1:
			return errorf("DATACORE_KV_REPLICAS", "is %d but DATACORE_CLUSTER is unset: the buckets exist only in cluster mode; set DATACORE_CLUSTER or unset DATACORE_KV_REPLICAS", c.KVReplicas)
		}
		return nil
	}
	if err := cluster.ValidateName(c.Cluster); err != nil {
		return errorf("DATACORE_CLUSTER", "%v", err)
	}
	if c.Instance != "" {
		if err := cluster.ValidateName(c.Instance); err != nil {
			return errorf("DATACORE_INSTANCE", "%v", err)
		}
	}
	switch {
	case c.Replicas < 1:
		return errorf("DATACORE_REPLICAS", "must be at least 1, got %q", strconv.Itoa(c.Replicas))
	case c.Replicas > cluster.MaxReplicas:
		return errorf("DATACORE_REPLICAS", "must be at most %d, got %q", cluster.MaxReplicas, strconv.Itoa(c.Replicas))
	case c.Replicas > 1 && !c.JetStream:
		return errorf("DATACORE_REPLICAS", "is %d but DATACORE_JETSTREAM is false: with core NATS every replica would publish each message again; set DATACORE_JETSTREAM=true (its duplicate window stores each message once) or DATACORE_REPLICAS=1", c.Replicas)
	case c.KVReplicas < 1 || c.KVReplicas > 5:
		return errorf("DATACORE_KV_REPLICAS", "must be from 1 to 5 (JetStream's limit), got %q", strconv.Itoa(c.KVReplicas))
	case c.LeaseTTL < minLeaseTTL || c.LeaseTTL > maxLeaseTTL:
		return errorf("DATACORE_LEASE_TTL", "must be from %s to %s, got %q", minLeaseTTL, maxLeaseTTL, c.LeaseTTL.String())
	}
	return nil
}

func (c *Config) checkFollow() error {
	if len(c.Fixtures) > 0 || len(c.Venues) > 0 || len(c.Organizations) > 0 {
		return nil
	}
	if c.Cluster != "" {
		// The followed set lives in KV: another process, or an operator
		// with the nats CLI, may fill it.
		return nil
	}
	if c.AdminToken != "" && c.HTTPAddr != "" {
		return nil
	}
	if c.AdminToken != "" {
		return errorf("DATACORE_FIXTURES", "nothing to follow: DATACORE_ADMIN_TOKEN is set but DATACORE_HTTP_ADDR is empty, so no fixture can be added at run time; set DATACORE_FIXTURES, DATACORE_VENUES or DATACORE_ORGANIZATIONS, or DATACORE_HTTP_ADDR")
	}
	return errorf("DATACORE_FIXTURES", "nothing to follow: set DATACORE_FIXTURES, DATACORE_VENUES or DATACORE_ORGANIZATIONS, or DATACORE_ADMIN_TOKEN to add them at run time")
}

func (c *Config) checkLog() error {
	c.LogLevel = strings.ToLower(strings.TrimSpace(c.LogLevel))
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return errorf("DATACORE_LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	c.LogFormat = strings.ToLower(strings.TrimSpace(c.LogFormat))
	switch c.LogFormat {
	case "json", "text":
	default:
		return errorf("DATACORE_LOG_FORMAT", "must be json or text, got %q", c.LogFormat)
	}
	return nil
}

func (c *Config) checkOAuth() error {
	parts := []struct{ name, value string }{
		{"DATACORE_OAUTH_TOKEN_URL", c.OAuthTokenURL},
		{"DATACORE_OAUTH_CLIENT_ID", c.OAuthClientID},
		{"DATACORE_OAUTH_CLIENT_SECRET", c.OAuthClientSecret},
	}
	set := 0
	for _, p := range parts {
		if p.value != "" {
			set++
		}
	}
	if set == 0 {
		if c.OAuthAudience != "" {
			return errorf("DATACORE_OAUTH_AUDIENCE", "needs DATACORE_OAUTH_TOKEN_URL, DATACORE_OAUTH_CLIENT_ID and DATACORE_OAUTH_CLIENT_SECRET")
		}
		return nil
	}
	if set < len(parts) {
		for _, p := range parts {
			if p.value == "" {
				return errorf(p.name, "required with the other DATACORE_OAUTH_ variables: set the token URL, client id and client secret together, or none of them")
			}
		}
	}
	c.OAuthTokenURL = strings.TrimSpace(c.OAuthTokenURL)
	if err := access.CheckTokenURL(c.OAuthTokenURL); err != nil {
		return errorf("DATACORE_OAUTH_TOKEN_URL", "%v, got %q", err, redact.URL(c.OAuthTokenURL))
	}
	return nil
}

func (c *Config) checkLimits() error {
	switch {
	case c.StopAfterFinal < 0:
		return errorf("DATACORE_STOP_AFTER_FINAL", "must not be negative (0 never stops), got %q", c.StopAfterFinal.String())
	case c.MaxInflight < 1:
		return errorf("DATACORE_MAX_INFLIGHT", "must be at least 1, got %q", strconv.Itoa(c.MaxInflight))
	case c.DedupWindow < 0:
		return errorf("DATACORE_DEDUP_WINDOW", "must not be negative (0 disables), got %q", c.DedupWindow.String())
	case c.ShutdownTimeout <= 0:
		return errorf("DATACORE_SHUTDOWN_TIMEOUT", "must be positive, got %q", c.ShutdownTimeout.String())
	}
	return nil
}

// Upper bounds of the capacity variables: past them a value is a mistake
// (a unit typo) that would cost memory or get the credentials throttled.
const (
	maxMaxInflight = 65536
	maxMaxStreams  = 100000
	maxAccessRate  = 1000
	maxAccessBurst = 1000
)

// checkCapacity checks the bounds on what the bridge holds and how fast it
// calls the access API.
func (c *Config) checkCapacity() error {
	switch {
	case c.MaxInflight > maxMaxInflight:
		return errorf("DATACORE_MAX_INFLIGHT", "must be at most %d, got %q", maxMaxInflight, strconv.Itoa(c.MaxInflight))
	case c.MaxStreams < 1 || c.MaxStreams > maxMaxStreams:
		return errorf("DATACORE_MAX_STREAMS", "must be from 1 to %d, got %q", maxMaxStreams, strconv.Itoa(c.MaxStreams))
	case len(c.Fixtures)+len(c.Venues) > c.MaxStreams:
		return errorf("DATACORE_MAX_STREAMS", "is %d but DATACORE_FIXTURES and DATACORE_VENUES name %d streams: raise it or follow fewer", c.MaxStreams, len(c.Fixtures)+len(c.Venues))
	case !(c.AccessRate > 0 && c.AccessRate <= maxAccessRate): // also refuses NaN
		return errorf("DATACORE_ACCESS_RATE", "must be a number of calls per second above 0 and at most %d, got %q", maxAccessRate, strconv.FormatFloat(c.AccessRate, 'g', -1, 64))
	case c.AccessBurst < 1 || c.AccessBurst > maxAccessBurst:
		return errorf("DATACORE_ACCESS_BURST", "must be from 1 to %d, got %q", maxAccessBurst, strconv.Itoa(c.AccessBurst))
	}
	return nil
}

// isSpaceOrControl reports whether r is whitespace or a control character.
func isSpaceOrControl(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r)
}
