// Package cluster makes several gateways one cluster over a shared Redis
// (DESIGN §10): a node registry with heartbeats under a TTL, dead nodes
// noticed and their records cleaned by one survivor (a lock in Redis),
// cluster-unique IDs (every node has an index; the nth ID a node makes is
// n*Stride+index, so the owner of an ID is read off the ID itself),
// conference names claimed by one node at a time, and the nodes' events
// relayed to each other. Forwarding API requests to the owner is the HTTP
// front's (control); this package only says who owns what.
//
// The Redis layout, every key under the configured prefix P:
//
//	P node:<name>    hash: the node's record (advertise URL, addresses,
//	                 index, capacity, load, token), PX ttl, renewed every ttl/3
//	P nodes          set of registered node names (alive, or dead and not yet cleaned)
//	P index:<name>   the node's index, 1..Stride-1, kept for good
//	P indexes        the last index given out; P byindex: hash index -> name
//	P conf:<name>    the node that holds conference name
//	P confs:<node>   set of the conference names a node holds
//	P conns:<node>   set of the connection IDs a node holds
//	P reap:<node>    the lock of the survivor cleaning a dead node, PX
//	P events         pub/sub channel: every node's events, JSON
//
// Nothing here runs on the media path: registry updates and events are
// queued and written in batches (one pipeline per ~10 ms); only a claim
// of a new conference name waits for a round trip.
package cluster
