// Package poll waits for a condition with a deadline: the one wait helper of
// the tests, the test bed and the benchmark. A test waits on what it expects
// to become true instead of sleeping.
//
// It imports nothing of this module, so that every package's tests can use it.
package poll
