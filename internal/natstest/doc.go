// Package natstest holds helpers for tests that run against an in-process
// nats-server with authentication: a self-signed PKI for TLS, user nkeys,
// operator-mode JWTs with a creds file, and the server options for each kind
// of authentication.
//
// It is imported by tests only. Every helper takes a testing.TB, fails the
// test on error and writes its files under t.TempDir().
package natstest
