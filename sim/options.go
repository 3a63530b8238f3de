package sim

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Scope names the emulator knows. Every read: scope is held by default.
const (
	ScopeEvents            = "read:stream_events"
	ScopeStatistics        = "read:stream_statistics"
	ScopeStatus            = "read:stream_status"
	ScopePlayByPlay        = "read:stream_play_by_play"
	ScopePersons           = "read:stream_persons"
	ScopePersonsCatchup    = "read:stream_persons_catchup"
	ScopeScoreboard        = "read:stream_scoreboard"
	ScopeTracking          = "read:stream_tracking"
	ScopeBiometrics        = "read:stream_biometrics"
	ScopeStatisticsPeriods = "read:stream_statistics_periods"
	ScopeResponse          = "read:response"
)

// ReadScopes lists every read: scope of the service, in a stable order.
var ReadScopes = []string{
	ScopeEvents, ScopeStatistics, ScopeStatus, ScopePlayByPlay, ScopePersons,
	ScopePersonsCatchup, ScopeScoreboard, ScopeTracking, ScopeBiometrics,
	ScopeStatisticsPeriods, ScopeResponse,
}

// Options configures a Server. The zero value is usable: it accepts any
// credentials, holds every read: scope and knows no fixture or venue.
type Options struct {
	// Addr is the listen address of the HTTP listener; default "127.0.0.1:0".
	Addr string
	// CredentialID and CredentialSecret are the accepted application credentials.
	CredentialID, CredentialSecret string
	// UserIdentityToken and ApplicationID are the accepted individual-user credentials.
	// When neither pair is set, any non-empty credentials are accepted.
	UserIdentityToken, ApplicationID string
	// Sport is the only sport access calls may ask for; default "basketball".
	Sport string
	// Scopes are the scopes the customer holds; default ReadScopes.
	Scopes []string
	// Fixtures and Venues are the known IDs (AddFixture and AddVenue add more at run time).
	Fixtures, Venues []string
	// GrantTTL is the signed URL's X-Amz-Expires, rounded up to whole seconds; default 1h.
	GrantTTL time.Duration
	// ConnLifetime closes a connection this long after its CONNECT; default 24h.
	ConnLifetime time.Duration
	// StableTopics keeps topic names the same across grants; by default the
	// organisation-like segment changes with every grant, as the service allows.
	StableTopics bool
	// MaxInflight is the number of unacknowledged QoS 1 messages the broker
	// has in flight per client; default 100, as AWS IoT. At the limit further
	// messages are dropped for a clean session and queued for a persistent one.
	MaxInflight int
	// MaxQueued bounds the messages queued per persistent session (while it
	// is offline or at MaxInflight); further ones are dropped. Default 10000.
	MaxQueued int
	// Feed shapes the synthetic game.
	Feed Feed
	// Faults makes the service misbehave; SetFaults changes them at run time.
	Faults Faults
	// Organizations are the organizations the customer holds: REST tokens
	// may cover them, and each has games on Schedule, listed by the REST API
	// and known to the access API.
	Organizations []string
	// Schedule shapes the games of every organization.
	Schedule Schedule
	// RESTTokenTTL is the lifetime of REST tokens (expiresIn, whole seconds); default 1h.
	RESTTokenTTL time.Duration
	// RESTPageSize caps the rows of one page of a REST listing below the
	// asked limit, to force several pages; 0 leaves the limit alone.
	RESTPageSize int
	// Now is the clock used for URL dates and expiry checks; default time.Now.
	// Tests move it to expire URLs without waiting.
	Now func() time.Time
	// ClockOffset moves the service's clock (Now) by this much: the signed
	// URLs' X-Amz-Date, their expiry checks and the access API's Date header
	// all follow it, as if the bridge's node had a clock off by -ClockOffset.
	ClockOffset time.Duration
	// Logger receives the emulator's logs; nil discards them. The broker's own
	// logs are passed on only when the logger is enabled for debug.
	Logger *slog.Logger
}

// Feed shapes the synthetic data published for every granted fixture and venue.
type Feed struct {
	// Rate is messages per second per fixture across its scopes; default 10.
	Rate float64
	// ScoreboardRate is scoreboard messages per second per venue while the clock runs; default 10.
	ScoreboardRate float64
	// Flood publishes as fast as the subscribers take (QoS 1 subscribers pace
	// it through their acknowledgements), ignoring Rate and ScoreboardRate.
	// A flooding stream waits until a client is connected to it.
	Flood bool
	// PayloadSize pads each message's data to about this many bytes (before compression).
	PayloadSize int
	// Compress sends compressedData (base64 of zlib of the data JSON) instead of data.
	Compress bool
	// FlatPadding pads with one repeated letter instead of random ones, so
	// that compressedData is far smaller than the data it carries.
	FlatPadding bool
	// GameLength is the length of a game from the fixture's first grant; 0 is endless.
	// After it the status goes FINISHED, then CONFIRMED, and the stream falls silent.
	GameLength time.Duration
}

// Schedule shapes the games of each organization: game n (any integer
// from -Past) starts at the emulator's start plus Lead plus n*Every, is
// SCHEDULED, then WARM_UP for WarmUp before its start, IN_PROGRESS for
// Length, FINISHED for FinalAfter, then CONFIRMED. Its fixture ID is
// "sim:org:<org>:game:<n>"; its status messages follow the same times.
type Schedule struct {
	// Every is the time between two games' starts; default 1h. Whole seconds.
	Every time.Duration
	// Lead is how long after the start game 0 starts (0: at once). Whole seconds.
	Lead time.Duration
	// Length is how long a game is IN_PROGRESS; default Feed.GameLength, else Every/2.
	Length time.Duration
	// FinalAfter is how long a game is FINISHED before CONFIRMED; default
	// Length/10, at least 100ms and at most 15m.
	FinalAfter time.Duration
	// WarmUp is how long a game is WARM_UP before its start; default Every/10, at most 5m.
	WarmUp time.Duration
	// Past is the number of games that started before game 0 (negative
	// numbers); default 3, negative for none.
	Past int
	// Venues gives each game a venue ("sim:org:<org>:venue:<1 or 2>"),
	// listed as venueId and known to the access API.
	Venues bool
}

// Faults are the misbehaviours of the emulated service. Shares are 0..1.
type Faults struct {
	// Access500 is the share of access calls answering 500.
	Access500 float64
	// Access429 is the share of access calls answering 429 with a Retry-After header.
	Access429 float64
	// AccessSlow is the share of access calls answered only after SlowDelay.
	AccessSlow float64
	// AccessGarbage is the share of access calls answering 200 with malformed JSON.
	AccessGarbage float64
	// RetryAfter is the Retry-After of 429 answers, whole seconds; default 1s.
	RetryAfter time.Duration
	// SlowDelay is how long slow answers take; default 2s.
	SlowDelay time.Duration
	// DisconnectEvery closes every MQTT connection each period; 0 never.
	DisconnectEvery time.Duration
	// GrantAge dates signed URLs this far in the past (X-Amz-Date), so that
	// grants arrive with that much less validity: already expired when it is
	// at least GrantTTL, as a service handing out stale URLs would.
	GrantAge time.Duration
	// WildcardExtra adds to every fixture or venue grant one read topic
	// holding MQTT wildcards ('+' and '#'), which no client should subscribe.
	WildcardExtra bool
	// WildcardOnly grants fixture and venue topics with MQTT wildcards only.
	WildcardOnly bool
	// REST500 is the share of REST API calls answering 500.
	REST500 float64
	// REST429 is the share of REST API calls answering 429 with a Retry-After header (RetryAfter).
	REST429 float64
	// REST401 is the share of REST API calls answering 401 whatever the token,
	// as if it had been revoked.
	REST401 float64
}

// Stats are counters since Start.
type Stats struct {
	Grants            uint64         // grants issued
	AccessCalls       map[int]uint64 // access API answers by HTTP status
	HandshakesOK      uint64         // WebSocket upgrades accepted
	HandshakesRefused uint64         // WebSocket upgrades refused (bad signature, expired, RefuseHandshakes)
	Connects          uint64         // MQTT CONNECTs accepted
	ConnectsRefused   uint64         // MQTT CONNECTs refused (wrong client id)
	Kicks             uint64         // connections closed because another one took over their client id
	Disconnects       uint64         // connections closed by the emulator (lifetime, DisconnectAll, DisconnectEvery, rule broken)
	Connected         int            // connections open now
	Published         uint64         // messages generated by the feed (one per seq, whatever the number of topics)
	Dropped           uint64         // messages the broker dropped for slow subscribers (or full or expired persistent-session queues)
	Queued            int            // messages waiting in persistent-session queues now
	RESTTokens        uint64         // REST tokens issued
	TokenCalls        map[int]uint64 // REST token endpoint answers by HTTP status
	RESTCalls         map[int]uint64 // REST API answers by HTTP status
}

var (
	errNoAddr     = errors.New("sim: empty listen address")
	errBadRate    = errors.New("sim: feed rates must be positive")
	errBadShare   = errors.New("sim: fault shares must be between 0 and 1")
	errBadScope   = errors.New("sim: unknown scope")
	errNegative   = errors.New("sim: durations must not be negative")
	errSumOfShare = errors.New("sim: Access500+Access429+AccessGarbage must not exceed 1")
	errPayload    = errors.New("sim: payload size must not exceed 128 KiB")
	errRESTShare  = errors.New("sim: REST500+REST429+REST401 must not exceed 1")
	errSchedule   = errors.New("sim: schedule Every and Lead must be whole seconds, Every at least 1s")
	errBadOrg     = errors.New("sim: organization IDs must be non-empty and hold no '/'")
)

func (o *Options) setDefaults() error {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Sport == "" {
		o.Sport = "basketball"
	}
	if len(o.Scopes) == 0 {
		o.Scopes = slices.Clone(ReadScopes)
	}
	for _, sc := range o.Scopes {
		if !knownScope(sc) {
			return fmt.Errorf("%w: %q", errBadScope, sc)
		}
	}
	if o.GrantTTL <= 0 {
		o.GrantTTL = time.Hour
	}
	if o.ConnLifetime <= 0 {
		o.ConnLifetime = 24 * time.Hour
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = 100
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if off := o.ClockOffset; off != 0 {
		base := o.Now
		o.Now = func() time.Time { return base().Add(off) }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Feed.Rate == 0 {
		o.Feed.Rate = 10
	}
	if o.Feed.ScoreboardRate == 0 {
		o.Feed.ScoreboardRate = 10
	}
	if o.Feed.Rate < 0 || o.Feed.ScoreboardRate < 0 {
		return errBadRate
	}
	if o.Feed.GameLength < 0 || o.Feed.PayloadSize < 0 {
		return errNegative
	}
	if o.Feed.PayloadSize > maxPayload {
		return errPayload
	}
	f, err := o.Faults.normalized()
	if err != nil {
		return err
	}
	o.Faults = f
	if o.RESTTokenTTL <= 0 {
		o.RESTTokenTTL = time.Hour
	}
	if o.RESTPageSize < 0 {
		return errNegative
	}
	for _, org := range o.Organizations {
		if org == "" || strings.ContainsAny(org, "/?#") {
			return fmt.Errorf("%w: %q", errBadOrg, org)
		}
	}
	return o.Schedule.setDefaults(o.Feed.GameLength)
}

func (sc *Schedule) setDefaults(gameLength time.Duration) error {
	if sc.Every == 0 {
		sc.Every = time.Hour
	}
	if sc.Every < time.Second || sc.Every%time.Second != 0 || sc.Lead < 0 || sc.Lead%time.Second != 0 {
		return errSchedule
	}
	if sc.Length < 0 || sc.FinalAfter < 0 || sc.WarmUp < 0 {
		return errNegative
	}
	if sc.Length == 0 {
		sc.Length = gameLength
		if sc.Length == 0 {
			sc.Length = sc.Every / 2
		}
	}
	if sc.FinalAfter == 0 {
		sc.FinalAfter = min(max(sc.Length/10, 100*time.Millisecond), 15*time.Minute)
	}
	if sc.WarmUp == 0 {
		sc.WarmUp = min(sc.Every/10, 5*time.Minute)
	}
	if sc.Past == 0 {
		sc.Past = 3
	}
	sc.Past = max(sc.Past, 0)
	return nil
}

func (f Faults) normalized() (Faults, error) {
	for _, v := range []float64{f.Access500, f.Access429, f.AccessSlow, f.AccessGarbage, f.REST500, f.REST429, f.REST401} {
		if v < 0 || v > 1 {
			return f, errBadShare
		}
	}
	if f.Access500+f.Access429+f.AccessGarbage > 1+1e-9 {
		return f, errSumOfShare
	}
	if f.REST500+f.REST429+f.REST401 > 1+1e-9 {
		return f, errRESTShare
	}
	if f.RetryAfter < 0 || f.SlowDelay < 0 || f.DisconnectEvery < 0 || f.GrantAge < 0 {
		return f, errNegative
	}
	if f.RetryAfter == 0 {
		f.RetryAfter = time.Second
	}
	if f.SlowDelay == 0 {
		f.SlowDelay = 2 * time.Second
	}
	return f, nil
}

func (f Faults) clamped() Faults {
	clamp := func(v float64) float64 { return min(max(v, 0), 1) }
	f.Access500, f.Access429, f.AccessSlow, f.AccessGarbage = clamp(f.Access500), clamp(f.Access429), clamp(f.AccessSlow), clamp(f.AccessGarbage)
	if sum := f.Access500 + f.Access429 + f.AccessGarbage; sum > 1 {
		f.Access500, f.Access429, f.AccessGarbage = f.Access500/sum, f.Access429/sum, f.AccessGarbage/sum
	}
	f.REST500, f.REST429, f.REST401 = clamp(f.REST500), clamp(f.REST429), clamp(f.REST401)
	if sum := f.REST500 + f.REST429 + f.REST401; sum > 1 {
		f.REST500, f.REST429, f.REST401 = f.REST500/sum, f.REST429/sum, f.REST401/sum
	}
	f.RetryAfter, f.SlowDelay, f.DisconnectEvery = max(f.RetryAfter, 0), max(f.SlowDelay, 0), max(f.DisconnectEvery, 0)
	f.GrantAge = max(f.GrantAge, 0)
	return f
}

// knownScope reports whether sc is a scope of the service: one of ReadScopes,
// or any write: scope.
func knownScope(sc string) bool {
	return slices.Contains(ReadScopes, sc) || (strings.HasPrefix(sc, "write:") && len(sc) > len("write:"))
}
