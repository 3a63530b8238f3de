// Package httpapi serves the bridge's HTTP endpoints: health, readiness,
// Prometheus metrics, the list of followed streams and the admin API that
// follows and unfollows fixtures and venues at run time.
//
//	GET    /healthz             200 "ok" while the process runs
//	GET    /readyz              200 {"status":"ready"}, or 503 {"status":"not ready","reason":"..."}
//	GET    /metrics             the Options.Metrics handler (404 when there is none)
//	GET    /v1/subscriptions    JSON array of fixtures.StreamInfo, sorted by kind then id (each with its source)
//	GET    /v1/discovery        JSON discovery.Status (404 when no organization is followed)
//	PUT    /v1/fixtures/{id}    follow a fixture: 201 when added, 200 when already followed
//	DELETE /v1/fixtures/{id}    unfollow a fixture: 204, whether or not it was followed
//	PUT    /v1/venues/{id}      follow a venue, as for fixtures
//	DELETE /v1/venues/{id}      unfollow a venue, as for fixtures
//
// The four mutations need "Authorization: Bearer <Options.AdminToken>". Without
// a configured token they answer 403 (the admin API is disabled); with a missing
// or wrong token, 401 with a WWW-Authenticate: Bearer challenge. Tokens are
// compared in constant time and never logged.
//
// PUT and DELETE are idempotent: repeating a PUT answers 200 instead of 201, and
// DELETE answers 204 both when the stream was followed and when it was not, so
// that a retried request never looks like a failure. A PUT the supervisor refuses
// (for example an ID that cannot be a Datacore ID) answers 400.
//
// Errors are JSON objects {"error":"..."}. A known path with the wrong method
// answers 405 with an Allow header; an unknown path answers 404.
package httpapi
