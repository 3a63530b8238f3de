package main

import (
	"bufio"
	"context"
	"io"
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
