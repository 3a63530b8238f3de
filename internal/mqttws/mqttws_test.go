package mqttws

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// serve runs one WebSocket connection through Upgrade and NewConn and
// returns the client end and what the server side read with the read
// buffer size given.
func serve(t *testing.T, bufSize int) (*websocket.Conn, <-chan []byte, <-chan error) {
	t.Helper()
	got, errc := make(chan []byte, 1), make(chan error, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := Upgrade(w, r)
		if err != nil {
			errc <- err
			return
		}
		c := NewConn(ws)
		defer c.Close()
		var all []byte
		buf := make([]byte, bufSize)
		for {
			n, err := c.Read(buf)
			all = append(all, buf[:n]...)
			if err != nil {
				got <- all
				errc <- err
				return
			}
		}
	}))
	t.Cleanup(hs.Close)
	d := websocket.Dialer{Subprotocols: []string{Subprotocol}}
	ws, resp, err := d.Dial("ws://"+strings.TrimPrefix(hs.URL, "http://"), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	if p := resp.Header.Get("Sec-Websocket-Protocol"); p != Subprotocol {
		t.Fatalf("subprotocol %q, want %q", p, Subprotocol)
	}
	return ws, got, errc
}

func TestConnRead(t *testing.T) {
	for _, tt := range []struct {
		name    string
		bufSize int
		msgs    []string
		text    bool // send a text message after msgs
		want    string
		wantErr error
	}{
		{name: "bytes across messages", bufSize: 64, msgs: []string{"ab", "", "cde", "f"}, want: "abcdef"},
		{name: "message larger than the read", bufSize: 2, msgs: []string{"abcdefg"}, want: "abcdefg"},
		{name: "text message", bufSize: 64, msgs: []string{"ab"}, text: true, want: "ab", wantErr: ErrNotBinary},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ws, got, errc := serve(t, tt.bufSize)
			for _, m := range tt.msgs {
				if err := ws.WriteMessage(websocket.BinaryMessage, []byte(m)); err != nil {
					t.Fatal(err)
				}
			}
			if tt.text {
				if err := ws.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
					t.Fatal(err)
				}
			} else {
				_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
			}
			if b := <-got; string(b) != tt.want {
				t.Errorf("read %q, want %q", b, tt.want)
			}
			err := <-errc
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Read error %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && !websocket.IsCloseError(err, websocket.CloseNormalClosure) && !errors.Is(err, io.EOF) {
				t.Errorf("Read error %v, want the close", err)
			}
		})
	}
}
