// Package pool makes several appliances one pool: it owns the pool's
// replicated state and the placement of leases across nodes.
//
// The pool is built on the embedded nats-server, clustered: each kerfd's
// broker joins its peers by cluster routes (authenticated by a shared
// secret, and TLS beyond loopback), JetStream is clustered, and the pool's
// state lives in JetStream key-value buckets with up to three replicas,
// written with sync_interval always. There is no consensus or membership
// protocol here: a majority of the members live, as the broker's cluster
// routes show them, is the quorum; each member's part of the lease ledger
// is changed only by compare-and-set, and each bucket's own Raft group
// acknowledges a write only once a majority of its replicas have it, so
// two nodes never grant the same capacity. JetStream's meta leader is
// needed only to create or delete buckets and to remove a member: while
// its group elects a new one, placements go on.
//
// What it owns:
//   - Config: the pool section of kerfd's configuration, and the cluster
//     options it gives the broker (ClusterOptions).
//   - The buckets: the node inventory (each node's GPUs and slices, one
//     key per node) and the lease ledger, a bucket per member (every
//     lease on that member's GPUs, one document, changed by
//     compare-and-set, its stream led by that member).
//   - Placement across nodes (Place), admission of a node's own leases
//     (Admit), the per-tenant limit counted across the pool, and the
//     majority rule: without quorum new placements are refused with an
//     error naming the live members (NoQuorumError).
//
// What it must not do: start or configure the broker's listeners, accounts
// or device permissions (the appliance does), touch a node's slicer or
// workers (it is told what a node holds and asked whether a lease may be
// granted), or import the transport, the API or the appliance.
//
// Semantics worth knowing: sessions already running never depend on the
// pool; only new placements need a quorum. A lease's record is removed by
// its owning node once the node no longer holds it, and by any node once
// the owning node has been out of the pool for Config.LeaseTimeout.
package pool
