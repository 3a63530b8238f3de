// Package config reads and checks the bridge's configuration.
//
// Every setting is an environment variable with the prefix DATACORE_, read with
// github.com/kelseyhightower/envconfig into a Config. Load reads the process
// environment and then calls Validate, which completes the configuration (derives
// the access API URL from DATACORE_ENV, reads DATACORE_CREDENTIAL_SECRET_FILE,
// trims and deduplicates lists) and checks every rule, so that a bad setting is
// reported once at start-up as a *Error naming the variable, never later per
// message.
//
// Usage prints every variable with its type, default and meaning, and Markdown
// writes the same table for the README; both are generated from the struct tags
// of Config, so the documentation cannot drift from what is read.
//
// Three variables extend the documented contract: DATACORE_MAX_INFLIGHT,
// DATACORE_DEDUP_WINDOW and DATACORE_SHUTDOWN_TIMEOUT.
//
// Fixture and venue IDs are trimmed, deduplicated (first occurrence wins) and must
// not be empty. They must not contain whitespace, control characters, '/', '+'
// or '#': Datacore embeds the ID as one level of its MQTT topic names, so such an
// ID cannot name a real fixture and would only produce a broken topic filter.
// Characters that NATS does not allow in a subject token are fine: the subject
// rule escapes them.
//
// Scopes must be well-formed read scopes ("read:" followed by lower-case letters,
// digits and underscores); the bridge never subscribes to write: scopes. A
// well-formed scope that is not in the documented list is accepted, since the
// service may add scopes before this program learns of them; KnownScopes lists
// the documented ones.
package config
