package discovery

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/datacore-bridge/datacore-bridge/access"
	"github.com/datacore-bridge/datacore-bridge/fixtures"
	"github.com/datacore-bridge/datacore-bridge/internal/backoff"
	"github.com/datacore-bridge/datacore-bridge/internal/loglimit"
	"github.com/datacore-bridge/datacore-bridge/metrics"
)

// Defaults of PollerOptions.
const (
	DefaultInterval = time.Minute
	DefaultAhead    = 30 * time.Minute
	DefaultLookback = 12 * time.Hour
	// QuotaWarnInterval is the interval below which Run warns, once, that
	// polling spends the API quota fast.
	QuotaWarnInterval = 30 * time.Second
)

// Follower is what a Poller needs from the supervisor of streams.
// *fixtures.Supervisor is one. Its methods must not block for long.
type Follower interface {
	// FollowFrom starts following a fixture or venue on behalf of source and
	// reports whether it is new; following an ID already followed changes
	// nothing.
	FollowFrom(kind access.Kind, id string, source fixtures.Source) (bool, error)
	// StopAfterFinal stops following a fixture some time after its status
	// became final, and reports whether it will.
	StopAfterFinal(id, status string) bool
}

// Lister lists an organization's fixtures between two times, every page.
// *Client is one.
type Lister interface {
	List(ctx context.Context, org string, from, to time.Time) ([]Fixture, error)
}

// PollerOptions configure a Poller. Lister, Follower and Organizations are required.
type PollerOptions struct {
	Lister        Lister
	Follower      Follower
	Organizations []string
	// Interval is the time between polls; default 1 min.
	Interval time.Duration
	// Ahead is how long before its start a fixture is followed; default 30 min.
	Ahead time.Duration
	// Lookback is how far back the listing window reaches, to catch games
	// that started earlier and are still live; default 12 h.
	Lookback time.Duration
	// Venues also follows each discovered fixture's venue.
	Venues bool
	// Metrics counts polls; nil counts into metrics.Discard().
	Metrics *metrics.Metrics
	// Logger logs; nil discards.
	Logger *slog.Logger
}

// Status is a snapshot of a Poller for the HTTP API.
type Status struct {
	Organizations []string   `json:"organizations"`
	LastListingAt *time.Time `json:"lastListingAt"`
	NextPollAt    *time.Time `json:"nextPollAt"`
	LastError     string     `json:"lastError,omitempty"`
	// Discovered is the number of fixtures discovery started following.
	Discovered int `json:"discovered"`
	// Leader is, in cluster mode, the member that lists the fixtures for
	// every member; the other fields are empty on the other members.
	Leader string `json:"leader,omitempty"`
}

// Poller lists the organizations' fixtures every Interval and follows those
// that the rule selects (see Select). Create it with NewPoller and run it with Run.
type Poller struct {
	o    PollerOptions
	log  *slog.Logger
	m    *metrics.Metrics
	warn *loglimit.Limiter

	mu        sync.Mutex
	followed  map[string]bool // fixtures followed once by discovery
	refused   map[string]bool // fixture and venue ids the supervisor refused for good
	venues    map[string]bool // venues followed once by discovery
	finalSent map[string]bool // fixtures whose final status was passed on
	lastOK    time.Time
	nextPoll  time.Time
	lastErr   error
	loggedErr string // the permanent error logged last
}

// NewPoller checks the options and returns a Poller.
func NewPoller(o PollerOptions) (*Poller, error) {
	switch {
	case o.Lister == nil || o.Follower == nil:
		return nil, errors.New("discovery: Lister and Follower are required")
	case len(o.Organizations) == 0:
		return nil, errors.New("discovery: no organizations")
	case o.Interval < 0 || o.Ahead < 0 || o.Lookback < 0:
		return nil, errors.New("discovery: Interval, Ahead and Lookback must not be negative")
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Ahead == 0 {
		o.Ahead = DefaultAhead
	}
	if o.Lookback == 0 {
		o.Lookback = DefaultLookback
	}
	if o.Metrics == nil {
		o.Metrics = metrics.Discard()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Organizations = append([]string(nil), o.Organizations...)
	return &Poller{
		o: o, log: o.Logger, m: o.Metrics, warn: loglimit.New(loglimit.DefaultEvery),
		followed: map[string]bool{}, refused: map[string]bool{}, venues: map[string]bool{}, finalSent: map[string]bool{},
	}, nil
}

// Statuses a fixture is followed in (when it starts within Ahead or has
// started), and final statuses that stop a fixture followed by discovery.
var (
	followStatuses = map[string]bool{"SCHEDULED": true, "PENDING": true, "WARM_UP": true, "ON_PITCH": true,
		"ABOUT_TO_START": true, "IN_PROGRESS": true, "FINISHED": true}
	finalStatuses = map[string]bool{"CONFIRMED": true, "CANCELLED": true, "ABANDONED": true, "POSTPONED": true}
)

// Decision is what the rule says about one listed fixture.
type Decision int

// The decisions of Select.
const (
	// Ignore: neither follow nor stop (out of the window, or a status such
	// as DRAFT, BYE or IF_NEEDED).
	Ignore Decision = iota
	// Follow: the fixture starts within Ahead of now or has started, in a
	// status that is live or about to be.
	Follow
	// Final: the fixture's status is final; a fixture discovery follows is
	// stopped after the grace for final statuses.
	Final
)

// Select applies the follow rule to a listed fixture at now: Follow when its
// status is SCHEDULED, PENDING, WARM_UP, ON_PITCH, ABOUT_TO_START,
// IN_PROGRESS or FINISHED and it starts no later than now+ahead; Final when
// its status is CONFIRMED, CANCELLED, ABANDONED or POSTPONED; else Ignore. A
// fixture whose start is missing or unreadable is ignored.
func Select(f Fixture, now time.Time, ahead time.Duration) Decision {
	switch {
	case finalStatuses[f.Status]:
		return Final
	case !followStatuses[f.Status]:
		return Ignore
	}
	start, ok := f.Start()
	if !ok || start.After(now.Add(ahead)) {
		return Ignore
	}
	return Follow
}

// Run polls at once, then every Interval, until ctx is done; it returns nil
// then. A failed listing changes nothing that is followed: 429 (after its
// Retry-After) and 5xx are retried with backoff, starting at Interval; 401
// and 403 are permanent (logged once, with what to check, shown by Ready and
// Status) and retried slowly.
func (p *Poller) Run(ctx context.Context) error {
	if p.o.Interval < QuotaWarnInterval {
		p.log.Warn("discovery interval is short: it spends the REST API quota fast",
			"interval", p.o.Interval.String(), "organizations", len(p.o.Organizations))
	}
	bo := backoff.New(backoff.Policy{Min: p.o.Interval, Max: 10 * p.o.Interval})
	slow := backoff.New(backoff.Policy{Min: max(p.o.Interval, time.Minute), Max: max(10*p.o.Interval, 30*time.Minute)})
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := p.Poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := p.o.Interval
		switch {
		case err == nil:
			bo.Reset()
			slow.Reset()
		case IsPermanent(err):
			wait = max(wait, slow.Next())
		default:
			wait = max(wait, bo.Next(), retryAfterOf(err))
		}
		p.mu.Lock()
		p.nextPoll = time.Now().Add(wait)
		p.mu.Unlock()
		t.Reset(wait)
	}
}

// Poll lists every organization once and applies the rule. It returns the
// first listing's error, if any; organizations listed before or after a
// failed one are still acted on, and nothing is unfollowed for a failure.
func (p *Poller) Poll(ctx context.Context) error {
	now := time.Now()
	from, to := now.Add(-p.o.Lookback), now.Add(p.o.Ahead)
	var first error
	for _, org := range p.o.Organizations {
		list, err := p.o.Lister.List(ctx, org, from, to)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if first == nil {
				first = err
			}
			if !isListing(err) {
				break // no token: the next organization would fail the same way
			}
			continue
		}
		p.apply(list, time.Now())
	}
	p.record(first, now)
	return first
}

// isListing reports whether err is a listing's error rather than a token's.
func isListing(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// record keeps a poll's outcome for Status, Ready, metrics and logs.
func (p *Poller) record(err error, at time.Time) {
	p.m.DiscoveryRuns.WithLabelValues(access.Outcome(err)).Inc()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = err
	switch {
	case err == nil:
		p.lastOK = at
		if p.loggedErr != "" {
			p.log.Info("discovery listing works again", "organizations", len(p.o.Organizations))
			p.loggedErr = ""
		}
	case IsPermanent(err):
		if p.loggedErr != err.Error() {
			p.loggedErr = err.Error()
			p.log.Error("discovery listing refused: nothing new is followed until this is fixed; followed streams keep running", "err", err)
		}
	default:
		if ok, n := p.warn.Allow("listing"); ok {
			p.log.Warn("discovery listing failed; retrying with backoff", "err", err, "suppressed", n)
		}
	}
}

// apply follows what the rule selects and passes final statuses on.
func (p *Poller) apply(list []Fixture, now time.Time) {
	for _, f := range list {
		if f.FixtureID == "" {
			continue
		}
		switch Select(f, now, p.o.Ahead) {
		case Follow:
			p.follow(f)
		case Final:
			p.final(f)
		}
	}
}

// follow follows f (and its venue) unless discovery did so before.
func (p *Poller) follow(f Fixture) {
	p.mu.Lock()
	done := p.followed[f.FixtureID] || p.refused[f.FixtureID]
	p.mu.Unlock()
	if !done {
		added, err := p.o.Follower.FollowFrom(access.Fixture, f.FixtureID, fixtures.SourceDiscovery)
		p.mu.Lock()
		switch {
		case err == nil:
			p.followed[f.FixtureID] = true
			p.m.DiscoveredFixtures.Set(float64(len(p.followed)))
			if added {
				p.log.Info("discovered fixture", "fixture", f.FixtureID, "status", f.Status, "start", f.StartTimeUTC)
			}
		case errors.Is(err, fixtures.ErrInvalidID):
			p.refused[f.FixtureID] = true
			p.log.Warn("discovered fixture id cannot be followed", "err", err)
		default: // too many streams, stopped: tried again at the next poll
			if ok, n := p.warn.Allow("follow"); ok {
				p.log.Warn("cannot follow a discovered fixture", "fixture", f.FixtureID, "err", err, "suppressed", n)
			}
		}
		p.mu.Unlock()
	}
	if p.o.Venues && f.VenueID != "" {
		p.followVenue(f.VenueID)
	}
}

// followVenue follows a discovered fixture's venue once.
func (p *Poller) followVenue(id string) {
	p.mu.Lock()
	done := p.venues[id] || p.refused["venue:"+id]
	p.mu.Unlock()
	if done {
		return
	}
	_, err := p.o.Follower.FollowFrom(access.Venue, id, fixtures.SourceDiscovery)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case err == nil:
		p.venues[id] = true
	case errors.Is(err, fixtures.ErrInvalidID):
		p.refused["venue:"+id] = true
		p.log.Warn("discovered venue id cannot be followed", "err", err)
	}
}

// final passes a final status on for a fixture discovery follows, once.
func (p *Poller) final(f Fixture) {
	p.mu.Lock()
	ours := p.followed[f.FixtureID] && !p.finalSent[f.FixtureID]
	if ours {
		p.finalSent[f.FixtureID] = true
	}
	p.mu.Unlock()
	if ours {
		p.o.Follower.StopAfterFinal(f.FixtureID, f.Status)
	}
}

// Status returns a snapshot for the HTTP API.
func (p *Poller) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Status{Organizations: append([]string(nil), p.o.Organizations...), Discovered: len(p.followed)}
	if !p.lastOK.IsZero() {
		t := p.lastOK.UTC()
		s.LastListingAt = &t
	}
	if !p.nextPoll.IsZero() {
		t := p.nextPoll.UTC()
		s.NextPollAt = &t
	}
	if p.lastErr != nil {
		s.LastError = p.lastErr.Error()
	}
	return s
}

// Ready returns the last poll's error when it is permanent (401, 403, …), else nil:
// a transient failure does not make the bridge unready.
func (p *Poller) Ready() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastErr != nil && IsPermanent(p.lastErr) {
		return p.lastErr // starts with "discovery: "
	}
	return nil
}
