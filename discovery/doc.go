// Package discovery follows organizations: it lists each organization's
// fixtures through the Datacore REST API, on a schedule, and asks the
// supervisor of streams to follow the fixtures that are about to start or
// are live, and to stop those whose status has become final.
//
// The REST API needs a token from the access API (access.Client.RESTToken);
// a Client reuses one until shortly before it expires and renews it once when
// a listing answers 401. A Poller never unfollows a fixture because it is
// missing from a listing or because a listing failed, and never follows
// again a fixture it followed once (so an admin DELETE sticks).
package discovery
