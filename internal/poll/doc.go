// Package poll waits with a deadline: Until and Wait for a condition, Recv
// for a value on a channel. It holds the one wait helper of the tests, the
// test bed and the benchmark; a test waits on what it expects instead of
// sleeping.
//
// It imports nothing of this module, so that every package's tests can use it.
package poll
