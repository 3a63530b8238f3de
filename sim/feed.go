package sim

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Fixture status values of status messages.
const (
	StatusInProgress = "IN_PROGRESS"
	StatusFinished   = "FINISHED"
	StatusConfirmed  = "CONFIRMED"
)

const (
	catchupSuffix = "_catchup"
	maxBurst      = 1000 // messages a paced stream publishes at once to catch up
	maxPayload    = 128 << 10
)

// messageTypes names the "type" of the messages of each scope.
var messageTypes = map[string]string{
	ScopeEvents: "event", ScopeStatistics: "statistics", ScopeStatus: "status",
	ScopePlayByPlay: "play_by_play", ScopePersons: "persons", ScopeTracking: "tracking",
	ScopeBiometrics: "biometrics", ScopeStatisticsPeriods: "statistics_periods",
	ScopeScoreboard: "scoreboard",
}

// fixtureCycle is the order a fixture's feed goes through its scopes; the
// scopes the customer does not hold are left out.
var fixtureCycle = []string{
	ScopeStatus, ScopeEvents, ScopePersons, ScopePlayByPlay, ScopeEvents, ScopeStatistics,
	ScopeTracking, ScopeEvents, ScopePlayByPlay, ScopeStatisticsPeriods, ScopeEvents,
	ScopeBiometrics, ScopeTracking,
}

func baseScope(scope string) string { return strings.TrimSuffix(scope, catchupSuffix) }

func streamKey(kind, id string) string { return kind + "/" + id }

// stream is the feed of one fixture or venue: it publishes every message on
// every topic currently granted for the message's scope.
type stream struct {
	s        *Server
	kind, id string
	idJSON   []byte // the JSON string of id
	cycle    []string
	seq      map[string]*atomic.Uint64 // by scope; fixed at creation

	mu     sync.Mutex
	topics map[string][]string // scope -> granted topics
	last   map[string][]byte   // scope -> last message

	sessions atomic.Pointer[[]*session] // connected clients that may read this stream
	wake     chan struct{}

	scheduled bool      // a game of Options.Schedule: its status follows the schedule
	start     time.Time // a scheduled game's start
}

// streamLocked returns the stream of a fixture or venue, starting its feed
// on first use. Call with s.mu held.
func (s *Server) streamLocked(kind, id string) *stream {
	key := streamKey(kind, id)
	if st := s.streams[key]; st != nil {
		return st
	}
	idJSON, _ := json.Marshal(id)
	st := &stream{
		s: s, kind: kind, id: id, idJSON: idJSON,
		seq:    map[string]*atomic.Uint64{},
		topics: map[string][]string{},
		last:   map[string][]byte{},
		wake:   make(chan struct{}, 1),
	}
	if kind == kindVenue {
		if s.holds(ScopeScoreboard) {
			st.cycle = []string{ScopeScoreboard}
		}
	} else {
		for _, sc := range fixtureCycle {
			if s.holds(sc) {
				st.cycle = append(st.cycle, sc)
			}
		}
	}
	for sc := range messageTypes {
		st.seq[sc] = new(atomic.Uint64)
	}
	if kind == kindFixture {
		st.start, st.scheduled = s.scheduledGame(id)
	}
	s.streams[key] = st
	if !s.closed {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			st.run(s.ctx)
		}()
	}
	return st
}

func (st *stream) lastSeq(scope string) uint64 {
	if c := st.seq[scope]; c != nil {
		return c.Load()
	}
	return 0
}

func (st *stream) notify() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// addTopic makes the feed publish scope's messages on topic too. A catchup
// topic starts with the last message of its type, retained.
func (st *stream) addTopic(scope, topic string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.topics[scope] = append(st.topics[scope], topic)
	if base := baseScope(scope); base != scope {
		if last := st.last[base]; last != nil {
			_ = st.s.broker.Publish(topic, last, true, 1)
		}
	}
}

func (st *stream) removeTopic(scope, topic string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	list := st.topics[scope]
	for i, t := range list {
		if t == topic {
			st.topics[scope] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if baseScope(scope) != scope {
		st.s.broker.Topics.RetainMessage(packets.Packet{TopicName: topic})
	}
}

// publish sends msg on every topic of scope, and retained on every topic of its catchup scope.
func (st *stream) publish(scope string, msg []byte, flood bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.last[scope] = msg
	for _, t := range st.topics[scope] {
		if flood {
			st.offer(t)
		}
		st.s.send(t, msg, false)
	}
	for _, t := range st.topics[scope+catchupSuffix] {
		if flood {
			st.offer(t)
		}
		st.s.send(t, msg, true)
	}
	st.s.stats.published.Add(1)
}

// offer counts a QoS 0 message for every session subscribed to topic.
func (st *stream) offer(topic string) {
	list := st.sessions.Load()
	if list == nil {
		return
	}
	for _, ss := range *list {
		if q, ok := ss.qos(topic); ok && q == 0 {
			ss.offered.Add(1)
		}
	}
}

// run generates the game until ctx ends or the game is over.
func (st *stream) run(ctx context.Context) {
	if len(st.cycle) == 0 {
		return // nothing this customer may read is generated
	}
	if st.scheduled {
		st.runScheduled(ctx)
		return
	}
	f := st.s.opts.Feed
	rate := f.Rate
	if st.kind == kindVenue {
		rate = f.ScoreboardRate
	}
	g := newGame(f.GameLength, mrand.Uint64())
	enc := newEncoder(st, f)
	start := time.Now()

	var tick <-chan time.Time
	if !f.Flood {
		interval := max(time.Duration(float64(time.Second)/rate), time.Millisecond)
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	var sent uint64
	for i := 0; ; {
		n := 1
		if f.Flood {
			if !st.waitCapacity(ctx) {
				return
			}
		} else {
			select {
			case <-ctx.Done():
				return
			case <-tick:
			}
			due := uint64(rate * time.Since(start).Seconds())
			if due <= sent {
				continue
			}
			if due-sent > maxBurst { // fell far behind: skip rather than burst
				sent = due - maxBurst
			}
			n, sent = int(due-sent), due
		}
		for range n {
			if g.over(time.Since(start)) {
				st.finish(ctx, g, enc)
				return
			}
			scope := st.cycle[i%len(st.cycle)]
			i++
			st.publish(scope, enc.message(scope, g), f.Flood)
		}
	}
}

// runScheduled generates a scheduled game until ctx ends or the game is
// CONFIRMED. The status follows the schedule on the service's clock
// (Options.Now): a status message is published at every change and, outside
// IN_PROGRESS, once a second; the other scopes are published at Feed.Rate
// while the game is IN_PROGRESS only. Feed.Flood does not apply.
func (st *stream) runScheduled(ctx context.Context) {
	s := st.s
	f, sc := s.opts.Feed, s.opts.Schedule
	rate := f.Rate
	g := newGame(sc.Length, mrand.Uint64())
	enc := newEncoder(st, f)
	withStatus := s.holds(ScopeStatus)
	interval := max(time.Duration(float64(time.Second)/rate), time.Millisecond)
	t := time.NewTicker(min(interval, 50*time.Millisecond))
	defer t.Stop()
	began := time.Now()
	var sent uint64
	last, lastAt := "", time.Time{}
	for i := 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.now()
		status := s.gameStatus(st.start, now)
		g.status, g.running = status, status == StatusInProgress
		switch status {
		case StatusInProgress:
			g.over(now.Sub(st.start))
		case StatusFinished, StatusConfirmed:
			g.over(sc.Length) // the final buzzer: period 4, clock 0
		default:
			g.period, g.clock = 1, gamePeriod
		}
		if status != last || (status != StatusInProgress && time.Since(lastAt) >= statusHeartbeat) {
			if withStatus {
				st.publish(ScopeStatus, enc.message(ScopeStatus, g), false)
			}
			last, lastAt = status, time.Now()
			if status == StatusConfirmed {
				return
			}
		}
		due := uint64(rate * time.Since(began).Seconds())
		if status != StatusInProgress {
			sent = due // play starts without a burst
			continue
		}
		if due <= sent {
			continue
		}
		if due-sent > maxBurst {
			sent = due - maxBurst
		}
		n := int(due - sent)
		sent = due
		for range n {
			scope := st.cycle[i%len(st.cycle)]
			i++
			st.publish(scope, enc.message(scope, g), false)
		}
	}
}

// finish publishes FINISHED, then CONFIRMED a little later, and returns.
func (st *stream) finish(ctx context.Context, g *game, enc *encoder) {
	if st.kind != kindFixture || !st.s.holds(ScopeStatus) {
		return
	}
	g.status, g.running = StatusFinished, false
	st.publish(ScopeStatus, enc.message(ScopeStatus, g), false)
	t := time.NewTimer(g.confirmDelay())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	g.status = StatusConfirmed
	st.publish(ScopeStatus, enc.message(ScopeStatus, g), false)
}

// waitCapacity blocks a flooding stream until a subscribed client can take
// more: QoS 1 clients below 3/4 of their in-flight window, QoS 0 clients
// below half of their outbound queue. It returns false when ctx ends.
func (st *stream) waitCapacity(ctx context.Context) bool {
	highQoS1 := max(st.s.opts.MaxInflight*3/4, 1)
	highQoS0 := int64(outboundQueue / 2)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if st.canTake(highQoS1, highQoS0) {
			return true
		}
		if timer == nil {
			timer = time.NewTimer(20 * time.Millisecond)
		} else {
			timer.Reset(20 * time.Millisecond) // in case a wake-up was missed
		}
		select {
		case <-ctx.Done():
			return false
		case <-st.wake:
		case <-timer.C:
		}
	}
}

func (st *stream) canTake(highQoS1 int, highQoS0 int64) bool {
	list := st.sessions.Load()
	if list == nil {
		return false
	}
	subscribed := false
	for _, ss := range *list {
		if len(*ss.subs.Load()) == 0 {
			continue
		}
		subscribed = true
		if ss.cl.State.Inflight.Len() >= highQoS1 || ss.offered.Load()-ss.written.Load() >= highQoS0 {
			return false
		}
	}
	return subscribed
}

// game is a synthetic basketball game: four periods of ten minutes of game
// clock, spread over GameLength of real time (ten real minutes per period when endless).
type game struct {
	rng        *mrand.Rand
	length     time.Duration
	periodLen  time.Duration // real time per period
	period     int
	clock      time.Duration // game clock left in the period
	running    bool
	status     string
	home, away int
	fouls      [2]int
	eventID    uint64
	lastEvent  string
	lastTeam   string
	lastPoints int
}

const gamePeriod = 10 * time.Minute

func newGame(length time.Duration, seed uint64) *game {
	g := &game{
		rng:       mrand.New(mrand.NewPCG(seed, seed>>1|1)),
		length:    length,
		periodLen: gamePeriod,
		period:    1,
		clock:     gamePeriod,
		running:   true,
		status:    StatusInProgress,
	}
	if length > 0 {
		g.periodLen = max(length/4, time.Millisecond)
	}
	return g
}

// over moves the clock to elapsed and reports whether the game has ended.
func (g *game) over(elapsed time.Duration) bool {
	if g.length > 0 && elapsed >= g.length {
		g.clock, g.period = 0, 4
		return true
	}
	g.period = int(elapsed/g.periodLen) + 1
	within := elapsed % g.periodLen
	g.clock = gamePeriod - time.Duration(float64(within)*float64(gamePeriod)/float64(g.periodLen))
	return false
}

func (g *game) confirmDelay() time.Duration {
	return min(max(g.length/10, 100*time.Millisecond), time.Minute)
}

var actions = []struct {
	name   string
	points int
}{{"2pt", 2}, {"2pt", 2}, {"3pt", 3}, {"freeThrow", 1}, {"foul", 0}, {"rebound", 0}, {"turnover", 0}}

// play makes the next action happen.
func (g *game) play() {
	g.eventID++
	a := actions[g.rng.IntN(len(actions))]
	team := 0
	g.lastTeam = "home"
	if g.rng.IntN(2) == 1 {
		team, g.lastTeam = 1, "away"
	}
	g.lastEvent, g.lastPoints = a.name, 0
	if a.points > 0 && g.rng.IntN(100) < 55 {
		g.lastPoints = a.points
		if team == 0 {
			g.home += a.points
		} else {
			g.away += a.points
		}
	}
	if a.name == "foul" {
		g.fouls[team]++
	}
}

func appendClock(b []byte, d time.Duration) []byte {
	d = max(d, 0).Round(time.Second)
	return fmt.Appendf(b, `"PT%02dM%02dS"`, int(d/time.Minute), int(d%time.Minute/time.Second))
}

const personsJSON = `[{"personId":"p-home-4","team":"home","bib":"4"},{"personId":"p-home-7","team":"home","bib":"7"},` +
	`{"personId":"p-home-11","team":"home","bib":"11"},{"personId":"p-away-5","team":"away","bib":"5"},` +
	`{"personId":"p-away-9","team":"away","bib":"9"},{"personId":"p-away-23","team":"away","bib":"23"}]`

// appendBody appends the scope-specific fields of a message's data.
func (g *game) appendBody(b []byte, scope string) []byte {
	switch scope {
	case ScopeEvents:
		g.play()
		b = fmt.Appendf(b, `,"eventId":%d,"class":"sport","type":%q,"success":%t,"team":%q,"periodId":%d,"clock":`,
			g.eventID, g.lastEvent, g.lastPoints > 0, g.lastTeam, g.period)
		b = appendClock(b, g.clock)
	case ScopePlayByPlay:
		desc := g.lastTeam + " " + g.lastEvent
		if g.lastPoints > 0 {
			desc += " made"
		}
		b = fmt.Appendf(b, `,"eventId":%d,"periodId":%d,"description":%q,"clock":`, g.eventID, g.period, desc)
		b = appendClock(b, g.clock)
	case ScopeStatistics, ScopeStatisticsPeriods:
		if scope == ScopeStatisticsPeriods {
			b = fmt.Appendf(b, `,"periodId":%d`, g.period)
		}
		b = fmt.Appendf(b, `,"statistics":{"home":{"points":%d,"fouls":%d},"away":{"points":%d,"fouls":%d}}`,
			g.home, g.fouls[0], g.away, g.fouls[1])
	case ScopeStatus:
		b = fmt.Appendf(b, `,"status":{"fixture":%q,"periodId":%d,"clock":{"running":%t,"main":`, g.status, g.period, g.running)
		b = appendClock(b, g.clock)
		b = fmt.Appendf(b, `},"scores":{"home":%d,"away":%d}}`, g.home, g.away)
	case ScopePersons:
		b = append(b, `,"persons":`...)
		b = append(b, personsJSON...)
	case ScopeTracking:
		b = fmt.Appendf(b, `,"personId":"p-home-7","x":%.2f,"y":%.2f`, 14+g.rng.Float64()*4, 7.5+g.rng.Float64()*3)
	case ScopeBiometrics:
		b = fmt.Appendf(b, `,"personId":"p-away-9","heartRate":%d`, 120+g.rng.IntN(60))
	case ScopeScoreboard:
		if g.rng.IntN(4) == 0 {
			g.play()
		}
		b = fmt.Appendf(b, `,"periodId":%d,"clock":{"running":%t,"main":`, g.period, g.running)
		b = appendClock(b, g.clock)
		b = fmt.Appendf(b, `},"scores":{"home":%d,"away":%d}`, g.home, g.away)
	}
	return b
}

// encoder turns game state into message bytes.
type encoder struct {
	st       *stream
	idField  string // "fixtureId" or "venueId"
	size     int
	pad      string // what padding is cut from
	compress bool
	data     []byte
	zbuf     bytes.Buffer
	zw       *zlib.Writer
}

// padding is what padded messages are filled with: random letters, so that
// compression does not make the size meaningless.
var padding = func() string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	r := mrand.New(mrand.NewPCG(1, 2))
	b := make([]byte, maxPayload)
	for i := range b {
		b[i] = letters[r.IntN(len(letters))]
	}
	return string(b)
}()

// flatPadding is what padded messages are filled with under Feed.FlatPadding.
var flatPadding = strings.Repeat("p", maxPayload)

func newEncoder(st *stream, f Feed) *encoder {
	e := &encoder{st: st, idField: "fixtureId", size: min(f.PayloadSize, maxPayload), pad: padding, compress: f.Compress}
	if f.FlatPadding {
		e.pad = flatPadding
	}
	if st.kind == kindVenue {
		e.idField = "venueId"
	}
	if e.compress {
		e.zw, _ = zlib.NewWriterLevel(&e.zbuf, zlib.BestSpeed)
	}
	return e
}

// message builds the next message of scope: a new seq, sentAt now.
func (e *encoder) message(scope string, g *game) []byte {
	seq := e.st.seq[scope].Add(1)
	now := time.Now()
	d := append(e.data[:0], `{"seq":`...)
	d = strconv.AppendUint(d, seq, 10)
	d = append(d, `,"sentAt":`...)
	d = strconv.AppendInt(d, now.UnixNano(), 10)
	d = g.appendBody(d, scope)
	const envelopeOverhead = 110 // type, id, timestamp and field names, roughly
	if pad := e.size - len(d) - envelopeOverhead - len(e.st.idJSON) - len(`,"pad":""}`); pad > 0 {
		d = append(d, `,"pad":"`...)
		d = append(d, e.pad[:pad]...)
		d = append(d, '"')
	}
	d = append(d, '}')
	e.data = d

	out := make([]byte, 0, len(d)+160)
	out = append(out, `{"type":"`...)
	out = append(out, messageTypes[scope]...)
	out = append(out, `","`...)
	out = append(out, e.idField...)
	out = append(out, `":`...)
	out = append(out, e.st.idJSON...)
	out = append(out, `,"timestamp":"`...)
	out = now.UTC().AppendFormat(out, time.RFC3339Nano)
	if e.compress {
		e.zbuf.Reset()
		e.zw.Reset(&e.zbuf)
		_, _ = e.zw.Write(d)
		_ = e.zw.Close()
		out = append(out, `","compressedData":"`...)
		out = base64.StdEncoding.AppendEncode(out, e.zbuf.Bytes())
		return append(out, `"}`...)
	}
	out = append(out, `","data":`...)
	out = append(out, d...)
	return append(out, '}')
}
