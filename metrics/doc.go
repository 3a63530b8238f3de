// Package metrics defines the bridge's Prometheus metrics.
//
// Every label set is bounded: stream_kind is fixture or venue, kind is one of the
// Datacore scopes, and the other labels are fixed enumerations. No label carries a
// fixture ID, a topic or anything per message.
package metrics
