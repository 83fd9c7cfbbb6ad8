package pool

import (
	"slices"
	"sort"
	"time"
)

// Status is the pool as this node sees it.
type Status struct {
	Pool     string   // the pool's name
	Node     string   // this node
	Quorum   bool     // a majority of the members is live: new placements are possible
	Size     int      // members JetStream counts
	Needed   int      // members that make a quorum
	Leader   string   // JetStream's meta leader; "" when none
	Live     []string // live members
	Replicas int      // copies of each bucket
	Members  []Member
	Leases   []Lease
	// Problem says why there is no quorum, that JetStream has no meta
	// leader, or why the state could not be read; "" when all is well.
	Problem string
}

// Member is one member of the pool: its inventory entry (as last read),
// whether it is live now, and what the ledger holds on it.
type Member struct {
	Node
	Live     bool
	Self     bool
	LastSeen time.Time // zero: not seen since this node started
	Held     float64   // GPUs leased on it
	Leases   int
}

// Status reports the pool: members, quorum and leases. It needs no
// quorum: without one it reports what was last read.
func (p *Pool) Status() Status {
	st := Status{Pool: p.opts.Config.Name, Node: p.opts.Node, Replicas: p.opts.Config.Replicas()}
	if p.srv == nil {
		st.Problem = "this node has not joined its pool yet"
		st.Live = []string{p.opts.Node}
		return st
	}
	st.Live = p.liveMembers()
	st.Size, st.Leader = p.meta()
	st.Needed = st.Size/2 + 1
	if err := p.Quorum(); err != nil {
		st.Problem = err.Error()
	} else {
		st.Quorum = true
		if st.Leader == "" {
			st.Problem = "no JetStream leader (electing one): placements go on; creating the pool's buckets and removing members wait for one"
		}
	}
	st.Leases = p.ledgerNow("").Leases
	p.mu.Lock()
	defer p.mu.Unlock()
	if st.Problem == "" {
		st.Problem = p.stateErr
	}
	names := map[string]bool{}
	for n := range p.nodes {
		names[n] = true
	}
	for _, n := range st.Live {
		names[n] = true
	}
	for _, x := range st.Leases {
		names[x.Node] = true
	}
	for n := range names {
		if p.left[n] {
			continue
		}
		m := Member{Node: p.nodes[n], Live: slices.Contains(st.Live, n), Self: n == p.opts.Node, LastSeen: p.lastSeen[n]}
		m.Name = n
		for _, x := range st.Leases {
			if x.Node == n {
				m.Held += x.Charge
				m.Leases++
			}
		}
		st.Members = append(st.Members, m)
	}
	sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].Name < st.Members[j].Name })
	return st
}

// Nodes is the node inventory as last read: every member's entry, live
// or not, but those removed by Leave.
func (p *Pool) Nodes() []Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Node
	for n, x := range p.nodes {
		if !p.left[n] {
			out = append(out, x)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
