package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRunArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{name: "help", args: []string{"-h"}, want: 0},
		{name: "unknown flag", args: []string{"-nope"}, want: 2},
		{name: "bad log level", args: []string{"-log-level", "loud"}, want: 2},
		{name: "half user credentials", args: []string{"-user-identity-token", "x"}, want: 2},
		{name: "bad share", args: []string{"-listen", "127.0.0.1:0", "-fault-500", "2"}, want: 1},
		{name: "stray argument", args: []string{"extra"}, want: 2},
		{name: "negative past games", args: []string{"-games-past", "-1"}, want: 2},
		{name: "sub-second game interval", args: []string{"-listen", "127.0.0.1:0", "-game-every", "1500ms"}, want: 1},
		{name: "bad REST share", args: []string{"-listen", "127.0.0.1:0", "-fault-rest-401", "2"}, want: 1},
		{name: "negative page size", args: []string{"-listen", "127.0.0.1:0", "-rest-page-size", "-1"}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runArgs(t.Context(), tt.args, io.Discard, io.Discard); got != tt.want {
				t.Fatalf("exit = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestRunPrintsEnvAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- runArgs(ctx, []string{"-listen", "127.0.0.1:0", "-log-level", "error"}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	found := false
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "export DATACORE_API_URL=http://127.0.0.1:") {
			found = true
		}
		if strings.HasPrefix(sc.Text(), "export DATACORE_INCLUDE_PORT") {
			break
		}
	}
	if !found {
		t.Fatal("no DATACORE_API_URL printed")
	}
	cancel()
	go io.Copy(io.Discard, pr)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit = %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop")
	}
}

// TestRunServesREST starts the command with the REST flags and uses the
// printed environment to get a token and list an organization's games.
func TestRunServesREST(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- runArgs(ctx, []string{"-listen", "127.0.0.1:0", "-log-level", "error",
			"-organizations", "org-a,org-b", "-game-every", "1m", "-game-venues", "-rest-page-size", "2", "-games-past", "0"}, pw, io.Discard)
		pw.Close()
	}()
	env := map[string]string{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok {
			env[k] = v
		}
		if strings.HasPrefix(sc.Text(), "export DATACORE_INCLUDE_PORT") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		cancel()
		<-done
	})
	if env["DATACORE_ORGANIZATIONS"] != "org-a,org-b" || env["DATACORE_DISCOVER_VENUES"] != "true" ||
		!strings.HasPrefix(env["DATACORE_REST_URL"], "http://127.0.0.1:") || !strings.HasSuffix(env["DATACORE_REST_URL"], "/rest/v1") {
		t.Fatalf("printed env %v", env)
	}

	body, _ := json.Marshal(map[string]any{"sport": env["DATACORE_SPORT"], "organization": map[string]any{"id": []string{"org-b"}},
		"credentialId": env["DATACORE_CREDENTIAL_ID"], "credentialSecret": env["DATACORE_CREDENTIAL_SECRET"]})
	resp, err := http.Post(env["DATACORE_API_URL"]+"/oauth2/rest/token", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		Data struct {
			Token     string `json:"token"`
			ExpiresIn int    `json:"expiresIn"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || tok.Data.ExpiresIn != 3600 {
		t.Fatalf("token: status %d, %+v, %v", resp.StatusCode, tok, err)
	}

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, env["DATACORE_REST_URL"]+"/basketball/o/org-b/fixtures", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Data.Token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Meta  struct{ Count, Limit int } `json:"meta"`
		Links struct{ Next string }      `json:"links"`
		Data  []struct {
			FixtureID string `json:"fixtureId"`
			VenueID   string `json:"venueId"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&l)
	resp.Body.Close()
	// No past games: game 0 (one minute from start) to game 9, the last within ten minutes.
	if err != nil || resp.StatusCode != 200 || l.Meta.Count != 10 || l.Meta.Limit != 2 || len(l.Data) != 2 || l.Links.Next == "" {
		t.Fatalf("listing: status %d, %+v, %v", resp.StatusCode, l, err)
	}
	if l.Data[0].FixtureID != "sim:org:org-b:game:0" || l.Data[0].VenueID != "sim:org:org-b:venue:1" {
		t.Fatalf("first row %+v", l.Data[0])
	}
}
