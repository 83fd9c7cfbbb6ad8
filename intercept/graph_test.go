package main

import (
	"testing"

	"github.com/kerf-edge/kerf/abi"
)

// newTestGraph makes a graph of n empty nodes with the given edges
// (from, to) and returns it with its nodes.
func newTestGraph(t *testing.T, n int, edges ...[2]int) (*graph, []*graphNode) {
	t.Helper()
	graphs.mu.Lock()
	g, res := newGraphLocked()
	graphs.mu.Unlock()
	if res != abi.Success {
		t.Fatal(res)
	}
	t.Cleanup(func() {
		graphs.mu.Lock()
		destroyGraphLocked(g)
		graphs.mu.Unlock()
	})
	nodes := make([]*graphNode, n)
	for i := range nodes {
		graphs.mu.Lock()
		nodes[i], res = newNodeLocked(g, nodeEmpty, nil, nil, nil)
		graphs.mu.Unlock()
		if res != abi.Success {
			t.Fatal(res)
		}
	}
	for _, e := range edges {
		if res := addDependencies(g.key, []uintptr{nodes[e[0]].key}, []uintptr{nodes[e[1]].key}); res != abi.Success {
			t.Fatalf("edge %v: %v", e, res)
		}
	}
	return g, nodes
}

// A graph is launched in an order that keeps every dependency, even one
// added after both nodes, earliest-added first among the ready.
func TestGraphOrderKeepsDependencies(t *testing.T) {
	g, n := newTestGraph(t, 4, [2]int{3, 0}, [2]int{2, 1})
	graphs.mu.Lock()
	x, res := orderLocked(g)
	graphs.mu.Unlock()
	if res != abi.Success {
		t.Fatal(res)
	}
	want := []*graphNode{n[2], n[3], n[0], n[1]}
	for i := range want {
		if got := x.index[want[i]]; got != i {
			t.Fatalf("node %d is step %d, want %d", i, got, i)
		}
	}
}

func TestGraphRefusesCyclesAndForeignNodes(t *testing.T) {
	g, n := newTestGraph(t, 3, [2]int{0, 1}, [2]int{1, 2})
	if res := addDependencies(g.key, []uintptr{n[2].key}, []uintptr{n[0].key}); res != abi.Success {
		t.Fatal(res) // a cycle is only found at instantiation, as in CUDA
	}
	graphs.mu.Lock()
	_, res := orderLocked(g)
	graphs.mu.Unlock()
	if res != abi.ErrInvalidValue {
		t.Fatalf("a cyclic graph ordered with %v", res)
	}
	other, m := newTestGraph(t, 1)
	if res := addDependencies(g.key, []uintptr{m[0].key}, []uintptr{n[0].key}); res != abi.ErrInvalidValue {
		t.Fatalf("an edge from another graph's node: %v", res)
	}
	if res := addDependencies(other.key, []uintptr{m[0].key}, []uintptr{m[0].key}); res != abi.ErrInvalidValue {
		t.Fatalf("a node depending on itself: %v", res)
	}
}

// A capture whose forked stream's work the origin stream never waited for
// is unjoined.
func TestCaptureUnjoined(t *testing.T) {
	g, n := newTestGraph(t, 3, [2]int{0, 1})
	c := &capture{g: g, origin: 1, tails: map[uintptr][]*graphNode{1: {n[1]}, 2: {n[0]}}}
	if c.unjoined() {
		t.Fatal("a joined fork reported unjoined")
	}
	c.tails[2] = []*graphNode{n[2]}
	if !c.unjoined() {
		t.Fatal("an unjoined fork not reported")
	}
}
