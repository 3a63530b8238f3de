// Package natstest runs in-process nats-servers for tests, the test bed and
// the benchmark: Run (for a test) and Start (for a program) start one on a
// random port of 127.0.0.1, with JetStream when asked, that can be stopped
// and restarted on the same port and store. It also holds what a server with
// authentication needs: a self-signed PKI for TLS, user nkeys, operator-mode
// JWTs with a creds file, and the server options for each kind of
// authentication.
//
// Only tests and developer tools import it, never the daemon. Every helper
// that takes a testing.TB fails the test on error and writes its files under
// t.TempDir().
package natstest
