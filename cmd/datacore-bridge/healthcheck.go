package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// healthcheckCommand asks the local bridge's /healthz (or -url) and exits 0 on
// 200, 1 otherwise. It needs no shell or curl in the container image.
func healthcheckCommand(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "URL to check (default: /healthz on DATACORE_HTTP_ADDR, port 8080)")
	path := fs.String("path", "/healthz", "path to check when -url is not given (/healthz or /readyz)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	target := *url
	if target == "" {
		addr, ok := os.LookupEnv("DATACORE_HTTP_ADDR")
		if !ok {
			addr = ":8080"
		}
		if addr == "" {
			fmt.Fprintln(stderr, "healthcheck: DATACORE_HTTP_ADDR is empty, so the bridge serves no HTTP; pass -url")
			return 2
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			fmt.Fprintf(stderr, "healthcheck: DATACORE_HTTP_ADDR: %v\n", err)
			return 2
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		target = "http://" + net.JoinHostPort(host, port) + *path
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		fmt.Fprintf(stderr, "healthcheck: %s answered %s: %s\n", target, resp.Status, body)
		return 1
	}
	return 0
}
