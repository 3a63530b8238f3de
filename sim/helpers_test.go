package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/datacore-bridge/datacore-bridge/internal/poll"
)

const (
	testID     = "cred-id"
	testSecret = "cred-secret"
	waitLimit  = 10 * time.Second
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func startSim(t testing.TB, o Options) *Server {
	t.Helper()
	if o.CredentialID == "" {
		o.CredentialID, o.CredentialSecret = testID, testSecret
	}
	if o.Fixtures == nil {
		o.Fixtures = []string{"F1", "F2"}
	}
	if o.Venues == nil {
		o.Venues = []string{"V1"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	s, err := Start(ctx, o)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type grantResponse struct {
	Data accessData     `json:"data"`
	Meta map[string]any `json:"meta"`
}

type errorResponse struct {
	Error struct {
		Message string `json:"message"`
	} `json:"error"`
}

// post sends an access call and returns the answer; the body is decoded into out when given.
func post(t testing.TB, s *Server, path string, body any, out any) *http.Response {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(s.APIURL()+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("post %s: %v", path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("decode %s (status %d): %v", path, resp.StatusCode, err)
		}
	}
	return resp
}

func fixtureBody(id string, scopes ...string) map[string]any {
	return map[string]any{
		"fixtureId": id, "sport": "basketball", "scopes": scopes, "includePort": true,
		"credentialId": testID, "credentialSecret": testSecret,
	}
}

// grantOf asks for a fixture (or venue, when venue is true) grant and fails the test unless it gets one.
func grantOf(t testing.TB, s *Server, id string, venue bool, scopes ...string) accessData {
	t.Helper()
	body := fixtureBody(id, scopes...)
	path := "/stream/fixture/access"
	if venue {
		delete(body, "fixtureId")
		body["venueId"] = id
		path = "/stream/venue/access"
	}
	var g grantResponse
	if resp := post(t, s, path, body, &g); resp.StatusCode != http.StatusOK {
		t.Fatalf("access %s: status %d", id, resp.StatusCode)
	}
	return g.Data
}

func topicsOf(g accessData) []string {
	var out []string
	for _, tp := range g.Topics {
		out = append(out, tp.Topic)
	}
	return out
}

// received is a message as a test sees it.
type received struct {
	topic   string
	payload []byte
	qos     byte
}

// client is a paho MQTT client connected to a grant's URL.
type client struct {
	paho.Client
	msgs chan received
	lost chan error
}

func dial(t testing.TB, url, clientID string) (*client, error) {
	t.Helper()
	c := &client{msgs: make(chan received, 4096), lost: make(chan error, 1)}
	o := paho.NewClientOptions().
		AddBroker(url).
		SetClientID(clientID).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetConnectionLostHandler(func(_ paho.Client, err error) { c.lost <- err }).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			select {
			case c.msgs <- received{topic: m.Topic(), payload: m.Payload(), qos: m.Qos()}:
			default: // the test stopped reading
			}
		})
	c.Client = paho.NewClient(o)
	if err := wait(c.Connect()); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, nil
}

func mustDial(t testing.TB, url, clientID string) *client {
	t.Helper()
	c, err := dial(t, url, clientID)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return c
}

// subscribe subscribes to topics in one SUBSCRIBE and returns the granted codes.
func (c *client) subscribe(t testing.TB, qos byte, topics ...string) map[string]byte {
	t.Helper()
	filters := map[string]byte{}
	for _, tp := range topics {
		filters[tp] = qos
	}
	tok := c.SubscribeMultiple(filters, nil)
	if err := wait(tok); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return tok.(*paho.SubscribeToken).Result()
}

type errTimeout struct{}

func (errTimeout) Error() string { return "timed out" }

func wait(tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-time.After(waitLimit):
		return errTimeout{}
	}
}

// next returns the next message, or fails the test after waitLimit.
func (c *client) next(t testing.TB) received {
	t.Helper()
	return poll.Recv(t, c.msgs, waitLimit, "a message")
}

// waitLost waits until the connection is lost.
func (c *client) waitLost(t testing.TB) error {
	t.Helper()
	return poll.Recv(t, c.lost, waitLimit, "the connection to be lost")
}

// message is the part of a feed message the tests check.
type message struct {
	Type           string          `json:"type"`
	FixtureID      string          `json:"fixtureId"`
	VenueID        string          `json:"venueId"`
	Timestamp      time.Time       `json:"timestamp"`
	Data           json.RawMessage `json:"data"`
	CompressedData []byte          `json:"compressedData"`
}

type messageData struct {
	Seq    uint64 `json:"seq"`
	SentAt int64  `json:"sentAt"`
	Status *struct {
		Fixture string `json:"fixture"`
	} `json:"status"`
}

func decode(t testing.TB, payload []byte) (message, messageData) {
	t.Helper()
	var m message
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatalf("message is not JSON: %v: %s", err, payload)
	}
	var d messageData
	if err := json.Unmarshal(m.Data, &d); err != nil && m.CompressedData == nil {
		t.Fatalf("data is not JSON: %v", err)
	}
	return m, d
}
