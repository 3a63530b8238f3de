package access

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// grantTransport answers every request with a valid grant, without a socket,
// and counts the requests.
type grantTransport struct{ calls atomic.Int64 }

const paceGrantBody = `{"data":{"url":"wss://broker.example/mqtt","clientId":"stream-1",` +
	`"topics":[{"topic":"s/f/1/e","scope":"read:stream_events","permission":"read"}]}}`

func (g *grantTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	g.calls.Add(1)
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(paceGrantBody)),
		Request:    r,
	}, nil
}

// newPacedClient returns a Client on a fake transport, paced at r per second
// with the given burst.
func newPacedClient(t *testing.T, r rate.Limit, burst int) (*Client, *grantTransport) {
	t.Helper()
	tr := &grantTransport{}
	c, err := New(Options{BaseURL: "https://access.example/v1", Credentials: appCreds(),
		HTTPClient: &http.Client{Transport: tr}, Rate: r, Burst: burst})
	if err != nil {
		t.Fatal(err)
	}
	return c, tr
}

var paceRequest = Request{Kind: Fixture, ID: "f1", Sport: "basketball", Scopes: []string{"read:stream_events"}}

// TestAccessCallsArePaced starts 30 calls at once on a client paced at 5 per
// second with a burst of 10: in fake time, 10 go at once, then one every
// 200 ms, so that at every moment t the calls made are burst + rate*t, and the
// last is made at 4 s.
func TestAccessCallsArePaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			n     = 30
			burst = 10
			perS  = 5
		)
		c, tr := newPacedClient(t, perS, burst)
		start := time.Now()
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if _, err := c.Access(t.Context(), paceRequest); err != nil {
					t.Errorf("Access: %v", err)
				}
			})
		}
		for {
			synctest.Wait()
			elapsed := time.Since(start)
			want := min(n, burst+int64(elapsed*perS/time.Second))
			if got := tr.calls.Load(); got != want {
				t.Fatalf("%d calls after %v, want %d (burst %d + %d/s)", got, elapsed, want, burst, perS)
			}
			if want == n {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		wg.Wait()
		if d := time.Since(start); d != 4*time.Second {
			t.Errorf("the %d calls took %v of fake time, want 4s", n, d)
		}
	})
}

// TestPaceWaitIsCancellable cancels a call waiting for its turn: it returns
// at once with a transport error wrapping the context's, makes no request,
// and gives its turn back to the next caller.
func TestPaceWaitIsCancellable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, tr := newPacedClient(t, 1, 1)
		start := time.Now()
		if _, err := c.Access(t.Context(), paceRequest); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := c.Access(ctx, paceRequest)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrTransport) {
			t.Errorf("cancelled wait: %v, want a transport error wrapping context.Canceled", err)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Errorf("cancelled wait returned after %v, want 100ms", d)
		}
		if n := tr.calls.Load(); n != 1 {
			t.Errorf("%d requests, want 1: a cancelled wait must not call", n)
		}
		// The cancelled turn is given back: the next call goes at 1 s.
		if _, err := c.Access(t.Context(), paceRequest); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("next call made at %v, want 1s", d)
		}
	})
}

// TestUnpacedByDefault checks that a Client without Rate does not wait.
func TestUnpacedByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, tr := newPacedClient(t, 0, 0)
		start := time.Now()
		for range 50 {
			if _, err := c.Access(t.Context(), paceRequest); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != 0 || tr.calls.Load() != 50 {
			t.Errorf("50 unpaced calls: %d requests in %v of fake time", tr.calls.Load(), d)
		}
	})
}
