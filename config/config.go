package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Prefix is the prefix of every environment variable read by Load.
const Prefix = "DATACORE"

// ClusterShutdownTimeout is DATACORE_SHUTDOWN_TIMEOUT's default in cluster
// mode: a stop first hands the process's streams over to other members.
const ClusterShutdownTimeout = 30 * time.Second

// Config is the bridge's configuration, one field per environment variable.
//
// The struct tags are the single source of truth: `envconfig` names the variable
// (after the DATACORE_ prefix), `default` is its default, `desc` its meaning for
// Usage and Markdown, `secret:"true"` marks a value that must never be logged and
// `shown` replaces an empty default in the documentation.
type Config struct {
	Env    string `envconfig:"ENV" default:"production" desc:"production, nonprod or sandpit: picks the access host"`
	APIURL string `envconfig:"API_URL" shown:"from DATACORE_ENV" desc:"access API base, including /v1"`

	CredentialID         string `envconfig:"CREDENTIAL_ID" desc:"application credential id"`
	CredentialSecret     string `envconfig:"CREDENTIAL_SECRET" secret:"true" desc:"application credential secret (or use DATACORE_CREDENTIAL_SECRET_FILE)"`
	CredentialSecretFile string `envconfig:"CREDENTIAL_SECRET_FILE" desc:"a file to read the credential secret from (a regular file of at most 64 KiB, symbolic links followed; surrounding whitespace is trimmed), instead of DATACORE_CREDENTIAL_SECRET"`
	UserIdentityToken    string `envconfig:"USER_IDENTITY_TOKEN" secret:"true" desc:"individual-user credentials instead: the user identity token"`
	ApplicationID        string `envconfig:"APPLICATION_ID" desc:"individual-user credentials: the application id"`

	Sport         string   `envconfig:"SPORT" default:"basketball" desc:"sport sent in access calls"`
	Fixtures      []string `envconfig:"FIXTURES" desc:"comma-separated fixture IDs to follow from start"`
	Venues        []string `envconfig:"VENUES" desc:"comma-separated venue IDs to follow from start"`
	MaxStreams    int      `envconfig:"MAX_STREAMS" default:"1000" desc:"extension: the most fixtures and venues followed at once (env and admin API together); a PUT past it answers 409"`
	FixtureScopes []string `envconfig:"FIXTURE_SCOPES" default:"read:stream_events,read:stream_statistics,read:stream_status,read:stream_play_by_play,read:stream_persons" desc:"comma-separated scopes asked for on fixtures"`
	VenueScopes   []string `envconfig:"VENUE_SCOPES" default:"read:stream_scoreboard" desc:"comma-separated scopes asked for on venues"`
	IncludePort   bool     `envconfig:"INCLUDE_PORT" default:"false" desc:"sent as includePort"`
	QoS           int      `envconfig:"QOS" default:"1" desc:"subscription QoS (0 or 1)"`

	NATSURLs     []string `envconfig:"NATS_URL" default:"nats://127.0.0.1:4222" desc:"comma-separated NATS servers"`
	NATSCreds    string   `envconfig:"NATS_CREDS" desc:"NATS credentials (JWT) file"`
	NATSNKey     string   `envconfig:"NATS_NKEY" desc:"NATS NKey seed file"`
	NATSToken    string   `envconfig:"NATS_TOKEN" secret:"true" desc:"NATS token"`
	NATSUser     string   `envconfig:"NATS_USER" desc:"NATS user name"`
	NATSPassword string   `envconfig:"NATS_PASSWORD" secret:"true" desc:"NATS password"`
	NATSTLSCA    string   `envconfig:"NATS_TLS_CA" desc:"CA certificate file to verify the NATS servers"`
	NATSTLSCert  string   `envconfig:"NATS_TLS_CERT" desc:"client certificate file for NATS (with DATACORE_NATS_TLS_KEY)"`
	NATSTLSKey   string   `envconfig:"NATS_TLS_KEY" desc:"client key file for NATS (with DATACORE_NATS_TLS_CERT)"`

	SubjectPrefix string `envconfig:"SUBJECT_PREFIX" default:"datacore" desc:"first subject token(s)"`
	JetStream     bool   `envconfig:"JETSTREAM" default:"false" desc:"publish with JetStream and wait for acks (at-least-once)"`
	Stream        string `envconfig:"STREAM" desc:"with JetStream: create or update this stream over <prefix>.>"`

	HTTPAddr   string `envconfig:"HTTP_ADDR" default:":8080" desc:"health, metrics and admin API; empty disables"`
	AdminToken string `envconfig:"ADMIN_TOKEN" secret:"true" desc:"bearer token for admin mutations; unset: mutations answer 403"`

	LogLevel  string `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat string `envconfig:"LOG_FORMAT" default:"json" desc:"json or text"`

	Decompress     bool          `envconfig:"DECOMPRESS" default:"false" desc:"republish compressedData inflated into data"`
	StopAfterFinal time.Duration `envconfig:"STOP_AFTER_FINAL" default:"15m" desc:"stop following a fixture this long after its status is CONFIRMED, CANCELLED, ABANDONED or POSTPONED; 0 never"`

	OAuthTokenURL     string `envconfig:"OAUTH_TOKEN_URL" desc:"OAuth2 client credentials: token endpoint; a bearer token is sent on access calls"`
	OAuthClientID     string `envconfig:"OAUTH_CLIENT_ID" desc:"OAuth2 client id"`
	OAuthClientSecret string `envconfig:"OAUTH_CLIENT_SECRET" secret:"true" desc:"OAuth2 client secret"`
	OAuthAudience     string `envconfig:"OAUTH_AUDIENCE" desc:"OAuth2 audience (optional)"`

	AccessRate  float64 `envconfig:"ACCESS_RATE" default:"5" desc:"extension: access API calls per second, over all streams (a token bucket), so that many streams starting at once do not get the credentials throttled"`
	AccessBurst int     `envconfig:"ACCESS_BURST" default:"10" desc:"extension: access API calls that may go at once before DATACORE_ACCESS_RATE paces them"`

	MaxInflight     int           `envconfig:"MAX_INFLIGHT" default:"1024" desc:"extension: messages held between MQTT and NATS before backpressure"`
	DedupWindow     time.Duration `envconfig:"DEDUP_WINDOW" default:"2m" desc:"extension: how long a message is remembered to publish it once when two connections (rotation, resumed session) or a broker re-send (DUP flag) deliver it again; an identical payload again on the same connection is published; 0 disables"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"10s" desc:"extension: how long a shutdown may take to finish in-flight messages and drain NATS; 30s when unset with DATACORE_CLUSTER, where it includes handing the streams over to other processes"`

	Organizations    []string      `envconfig:"ORGANIZATIONS" desc:"comma-separated organization IDs whose fixtures are discovered through the REST API and followed (see Following organizations); enough on its own to start"`
	RESTURL          string        `envconfig:"REST_URL" shown:"from DATACORE_ENV" desc:"Datacore REST API base, including /v1, for discovery"`
	DiscoverInterval time.Duration `envconfig:"DISCOVER_INTERVAL" default:"1m" desc:"how often each organization's fixtures are listed; at least 1s (below 30s spends the API quota fast)"`
	DiscoverAhead    time.Duration `envconfig:"DISCOVER_AHEAD" default:"30m" desc:"a discovered fixture is followed from this long before its start"`
	DiscoverVenues   bool          `envconfig:"DISCOVER_VENUES" default:"false" desc:"also follow each discovered fixture's venue"`

	Cluster    string        `envconfig:"CLUSTER" desc:"cluster mode: a name (letters, digits, - and _, at most 64) shared by every process that splits the followed set through JetStream KV (see Several replicas); unset: this process runs alone, in memory"`
	Replicas   int           `envconfig:"REPLICAS" default:"1" desc:"cluster mode: processes that follow each fixture or venue at once; above 1 only with DATACORE_JETSTREAM=true"`
	Instance   string        `envconfig:"INSTANCE" shown:"host name plus a random suffix" desc:"cluster mode: this process's name among the members (letters, digits, - and _, at most 64); unique per live process"`
	KVReplicas int           `envconfig:"KV_REPLICAS" default:"1" desc:"cluster mode: replicas of the two KV buckets when this process creates them (1 to 5); 3 on a clustered NATS, so that losing a NATS server loses no coordination; existing buckets are used as they are"`
	LeaseTTL   time.Duration `envconfig:"LEASE_TTL" default:"10s" desc:"cluster mode: how long a membership or lease lives without renewal; a process killed without warning is replaced within it (plus an access call and a connect); at least 1s"`

	// secretFromFile is set once Validate has read CredentialSecretFile into
	// CredentialSecret, so that a second Validate does not see both set.
	secretFromFile bool
}

// Load reads the configuration from the process environment, fills in defaults
// and calls Validate. Every error is a *Error naming the variable.
func Load() (*Config, error) {
	var c Config
	if err := envconfig.Process(Prefix, &c); err != nil {
		return nil, fromEnvconfig(err)
	}
	if _, set := os.LookupEnv(Prefix + "_SHUTDOWN_TIMEOUT"); !set && strings.TrimSpace(c.Cluster) != "" {
		c.ShutdownTimeout = ClusterShutdownTimeout
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Defaults returns the configuration with every variable unset: each field holds
// its documented default. It does not validate: without credentials it is not a
// valid configuration. Tests and tools start from it and set what they need.
func Defaults() *Config {
	var c Config
	for _, f := range fields() {
		def := f.field.Tag.Get("default")
		if def == "" {
			continue
		}
		v := reflect.ValueOf(&c).Elem().FieldByIndex(f.field.Index)
		if err := setFromString(v, def); err != nil {
			// The defaults are constants checked by the tests.
			panic(fmt.Sprintf("config: bad default for %s: %v", f.name, err))
		}
	}
	return &c
}

// fromEnvconfig turns an envconfig parse error into a *Error. The value is
// quoted only for non-string fields, which never hold secrets.
func fromEnvconfig(err error) error {
	var pe *envconfig.ParseError
	if !errors.As(err, &pe) {
		return fmt.Errorf("config: %w", err)
	}
	return &Error{Var: pe.KeyName, Msg: fmt.Sprintf("must be %s, got %q", describeType(pe.TypeName), pe.Value)}
}

// describeType names what a field of the given Go type expects, for errors.
func describeType(goType string) string {
	switch goType {
	case "time.Duration":
		return "a duration such as 90s, 15m or 1h30m"
	case "bool":
		return "true or false"
	case "int":
		return "an integer"
	case "float64":
		return "a number"
	default:
		return "a valid " + goType
	}
}

// setFromString parses s into v the way envconfig does for the field types
// Config uses.
func setFromString(v reflect.Value, s string) error {
	switch x := v.Addr().Interface().(type) {
	case *string:
		*x = s
	case *bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		*x = b
	case *int:
		n, err := strconv.ParseInt(s, 0, 0)
		if err != nil {
			return err
		}
		*x = int(n)
	case *float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		*x = f
	case *time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*x = d
	case *[]string:
		*x = nil
		if strings.TrimSpace(s) != "" {
			*x = strings.Split(s, ",")
		}
	default:
		return fmt.Errorf("unsupported field type %s", v.Type())
	}
	return nil
}
