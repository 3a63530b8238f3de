// Package cluster lets several bridge processes share one followed set
// through NATS JetStream key-value buckets, with no other coordination.
//
// The followed set is the bucket FollowedBucket(cluster): one key per
// fixture or venue (FollowedKey), kept until deleted. Members, leases and the
// discovery leader are keys of LeasesBucket(cluster), whose TTL is the lease
// TTL and which keeps limit markers, so that a watcher hears when a key
// expires:
//
//	member.<instance>                    a live process, renewed every third of the TTL
//	owner.<kind>.<id token>.<instance>   a lease: instance owns the stream, and its state
//	leader.discovery                     the process that lists the organizations' fixtures
//
// Every Node watches both buckets and computes the same assignment (Assign:
// rendezvous hashing with bounded loads over the live members that are not
// draining). A new owner starts the stream and writes its lease; the old one
// lets go only once every assigned owner's lease says connected
// (make-before-break). A Node that cannot renew its membership for three
// quarters of the TTL stops every stream (it is fenced) before its
// membership can expire and another member take them over.
package cluster
