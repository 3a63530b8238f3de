// Command datacore-sim runs the local Datacore emulator: the access API, the
// REST API with each organization's scheduled games, and the
// MQTT-over-WebSocket broker with a synthetic basketball feed, on one
// listener, until SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/datacore-bridge/datacore-bridge/sim"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runArgs(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

// runArgs parses args, runs the emulator until ctx ends and returns the exit code:
// 0 after a signal or -h, 1 when the emulator cannot start, 2 on bad flags.
func runArgs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, logCfg, refuse, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "datacore-sim:", err)
		return 2
	}
	logger, err := newLogger(stderr, logCfg)
	if err != nil {
		fmt.Fprintln(stderr, "datacore-sim:", err)
		return 2
	}
	o.Logger = logger

	s, err := sim.Start(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "datacore-sim:", err)
		return 1
	}
	if refuse > 0 {
		s.RefuseHandshakes(refuse)
	}
	printEnv(stdout, s, o)

	<-ctx.Done()
	logger.Info("stopping", "stats", fmt.Sprintf("%+v", s.Stats()))
	if err := s.Close(); err != nil {
		logger.Warn("stop", "error", err)
	}
	return 0
}

type logConfig struct{ level, format string }

func parseFlags(args []string, stderr io.Writer) (sim.Options, logConfig, time.Duration, error) {
	var (
		o        sim.Options
		lc       logConfig
		refuse   time.Duration
		scopes   string
		fixtures string
		venues   string
		orgs     string
		past     int
	)
	fs := flag.NewFlagSet("datacore-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: datacore-sim [flags]

Runs a local emulator of the Datacore streaming service: the access API under
/v1 (with the REST token endpoint), the REST API under /rest/v1 (organization
fixture listings backed by a schedule of games) and an MQTT broker over
WebSocket at /mqtt, on one listener. On start it
prints the environment a datacore-bridge needs to use it. Stop it with Ctrl-C.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Addr, "listen", "127.0.0.1:8089", "listen address of the access API and the broker")
	fs.StringVar(&o.CredentialID, "credential-id", "sim-credential", "accepted application credential id")
	fs.StringVar(&o.CredentialSecret, "credential-secret", "sim-secret", "accepted application credential secret")
	fs.StringVar(&o.UserIdentityToken, "user-identity-token", "", "accepted individual-user identity token (with -application-id)")
	fs.StringVar(&o.ApplicationID, "application-id", "", "accepted application id of individual-user credentials")
	fs.StringVar(&o.Sport, "sport", "basketball", "the only sport access calls may ask for")
	fs.StringVar(&scopes, "scopes", strings.Join(sim.ReadScopes, ","), "comma-separated scopes the customer holds; asking for another one answers 403")
	fs.StringVar(&fixtures, "fixtures", "sim-fixture-1", "comma-separated known fixture IDs")
	fs.StringVar(&venues, "venues", "sim-venue-1", "comma-separated known venue IDs")
	fs.DurationVar(&o.GrantTTL, "grant-ttl", time.Hour, "validity of signed URLs (X-Amz-Expires, whole seconds)")
	fs.DurationVar(&o.ConnLifetime, "conn-lifetime", 24*time.Hour, "a connection is closed this long after its CONNECT")
	fs.BoolVar(&o.StableTopics, "stable-topics", false, "keep topic names the same across grants (by default they change with every grant)")
	fs.IntVar(&o.MaxInflight, "max-inflight", 100, "unacknowledged QoS 1 messages in flight per client; beyond it a clean session drops and a persistent session queues")
	fs.Float64Var(&o.Feed.Rate, "rate", 10, "messages per second per fixture, across its scopes")
	fs.Float64Var(&o.Feed.ScoreboardRate, "scoreboard-rate", 10, "scoreboard messages per second per venue while the clock runs")
	fs.BoolVar(&o.Feed.Flood, "flood", false, "publish as fast as subscribers take (benchmarks); ignores -rate")
	fs.IntVar(&o.Feed.PayloadSize, "payload-size", 0, "pad messages to about this many bytes (at most 131072)")
	fs.BoolVar(&o.Feed.Compress, "compress", false, "send compressedData (base64 of zlib JSON) instead of data")
	fs.DurationVar(&o.Feed.GameLength, "game-length", 0, "game length: of -fixtures from their first grant, then FINISHED and CONFIRMED (0 endless); of scheduled games, IN_PROGRESS time (0: half of -game-every)")
	fs.StringVar(&orgs, "organizations", "sim-org-1", "comma-separated organizations the customer holds, each with a game every -game-every (REST API); empty for none")
	fs.DurationVar(&o.Schedule.Every, "game-every", 10*time.Minute, "a scheduled game starts this often (whole seconds)")
	fs.DurationVar(&o.Schedule.Lead, "game-lead", time.Minute, "the first scheduled game starts this long after the emulator (whole seconds)")
	fs.DurationVar(&o.Schedule.FinalAfter, "game-final-after", 0, "a scheduled game is FINISHED this long before CONFIRMED; 0: a tenth of its length (100ms..15m)")
	fs.DurationVar(&o.Schedule.WarmUp, "game-warm-up", 0, "a scheduled game is WARM_UP this long before its start; 0: a tenth of -game-every, at most 5m")
	fs.IntVar(&past, "games-past", 3, "scheduled games that started before the first one (listed, finished)")
	fs.BoolVar(&o.Schedule.Venues, "game-venues", false, "give scheduled games venues (venueId in listings, known to the access API)")
	fs.IntVar(&o.RESTPageSize, "rest-page-size", 0, "cap the rows of a REST listing page below the asked limit, to force paging; 0 no cap")
	fs.DurationVar(&o.RESTTokenTTL, "rest-token-ttl", time.Hour, "lifetime of REST tokens (expiresIn)")
	fs.Float64Var(&o.Faults.Access500, "fault-500", 0, "share (0..1) of access calls answering 500")
	fs.Float64Var(&o.Faults.Access429, "fault-429", 0, "share (0..1) of access calls answering 429 with Retry-After")
	fs.Float64Var(&o.Faults.AccessSlow, "fault-slow", 0, "share (0..1) of access calls answered after -slow-delay")
	fs.Float64Var(&o.Faults.AccessGarbage, "fault-garbage", 0, "share (0..1) of access calls answering 200 with malformed JSON")
	fs.Float64Var(&o.Faults.REST500, "fault-rest-500", 0, "share (0..1) of REST calls answering 500")
	fs.Float64Var(&o.Faults.REST429, "fault-rest-429", 0, "share (0..1) of REST calls answering 429 with Retry-After (-retry-after)")
	fs.Float64Var(&o.Faults.REST401, "fault-rest-401", 0, "share (0..1) of REST calls answering 401 whatever the token")
	fs.DurationVar(&o.Faults.RetryAfter, "retry-after", time.Second, "Retry-After of 429 answers")
	fs.DurationVar(&o.Faults.SlowDelay, "slow-delay", 2*time.Second, "delay of slow access answers")
	fs.DurationVar(&o.Faults.DisconnectEvery, "disconnect-every", 0, "close every MQTT connection each period; 0 never")
	fs.DurationVar(&o.ClockOffset, "clock-offset", 0, "move the service's clock (URL dates, expiry checks, Date header) by this much, as if the client's clock were off")
	fs.DurationVar(&o.Faults.GrantAge, "grant-age", 0, "date signed URLs this far in the past: grants arrive with less validity, expired when at least -grant-ttl")
	fs.BoolVar(&o.Faults.WildcardExtra, "wildcard-extra", false, "add a read topic holding MQTT wildcards to every grant")
	fs.BoolVar(&o.Faults.WildcardOnly, "wildcard-only", false, "grant only read topics holding MQTT wildcards")
	fs.DurationVar(&refuse, "refuse-handshakes", 0, "refuse every WebSocket upgrade (403) for this long after start")
	fs.StringVar(&lc.level, "log-level", "info", "debug, info, warn or error (debug includes the broker's own logs)")
	fs.StringVar(&lc.format, "log-format", "text", "text or json")
	if err := fs.Parse(args); err != nil {
		return o, lc, 0, err
	}
	if fs.NArg() > 0 {
		return o, lc, 0, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.Scopes = splitList(scopes)
	o.Fixtures = splitList(fixtures)
	o.Venues = splitList(venues)
	o.Organizations = splitList(orgs)
	switch {
	case past < 0:
		return o, lc, 0, errors.New("-games-past must not be negative")
	case past == 0:
		o.Schedule.Past = -1 // none
	default:
		o.Schedule.Past = past
	}
	if (o.UserIdentityToken == "") != (o.ApplicationID == "") {
		return o, lc, 0, errors.New("-user-identity-token and -application-id go together")
	}
	return o, lc, refuse, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newLogger(w io.Writer, c logConfig) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	ho := &slog.HandlerOptions{Level: level}
	switch c.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("-log-format: %q is neither text nor json", c.format)
}

// printEnv prints what a bridge needs to use the emulator, as shell exports.
// The credentials are the emulator's own, not Datacore's.
func printEnv(w io.Writer, s *sim.Server, o sim.Options) {
	fmt.Fprintf(w, "# Datacore emulator: access API %s, REST API %s, broker ws://%s/mqtt\n", s.APIURL(), s.RESTURL(), s.Addr())
	fmt.Fprintf(w, "export DATACORE_API_URL=%s\n", s.APIURL())
	fmt.Fprintf(w, "export DATACORE_REST_URL=%s\n", s.RESTURL())
	if o.CredentialID != "" {
		fmt.Fprintf(w, "export DATACORE_CREDENTIAL_ID=%s\n", o.CredentialID)
		fmt.Fprintf(w, "export DATACORE_CREDENTIAL_SECRET=%s\n", o.CredentialSecret)
	} else if o.UserIdentityToken != "" {
		fmt.Fprintf(w, "export DATACORE_USER_IDENTITY_TOKEN=%s\n", o.UserIdentityToken)
		fmt.Fprintf(w, "export DATACORE_APPLICATION_ID=%s\n", o.ApplicationID)
	}
	fmt.Fprintf(w, "export DATACORE_SPORT=%s\n", o.Sport)
	fmt.Fprintf(w, "export DATACORE_FIXTURES=%s\n", strings.Join(o.Fixtures, ","))
	fmt.Fprintf(w, "export DATACORE_VENUES=%s\n", strings.Join(o.Venues, ","))
	if len(o.Organizations) > 0 {
		fmt.Fprintf(w, "export DATACORE_ORGANIZATIONS=%s\n", strings.Join(o.Organizations, ","))
		if o.Schedule.Venues {
			fmt.Fprintln(w, "export DATACORE_DISCOVER_VENUES=true")
		}
	}
	fmt.Fprintln(w, "export DATACORE_INCLUDE_PORT=true")
}
