// Package slicer decides how kerfd's GPUs are cut into slices and who holds
// them. A slice is a memory quota plus a compute share on one physical GPU;
// a layout is the set of slices on each GPU; a profile is a named layout
// template (uniform-20, uniform-10, mixed-2x25-5x10, whole, or the
// operator's own).
//
// The package owns:
//
//   - the model and its validation (model.go, profile.go): slices must fit
//     a GPU's memory less a reserve, shares must sum to at most 100%;
//   - placement (slicer.go): n slices on n distinct GPUs of this node,
//     per-tenant GPU limits counting fractions, idle reclaim, a fair FIFO
//     queue (Allocate) and a fail-fast TryAllocate;
//   - live re-slicing (plan.go): a pure MakePlan from a layout to a
//     profile, and Apply, which resizes live slices in place through
//     Control; by default what live tenants prevent now stays pending (in
//     Status) and completes as they free memory or leave, and
//     ApplyOptions.RejectPending refuses such a plan with the reasons;
//   - the compute-share arbiter (share.go) that grants GPU time budgets to
//     worker processes by weighted fair share;
//   - persistence of layout, active profile, policies and leases
//     (store.go).
//
// It must not touch sessions, sockets, workers or backends: it never
// imports appliance or transport, never opens a device and never sleeps.
// Time comes from an injected clock.Clock (internal/clock).
//
// Wiring, for kerfd: build a Slicer from the discovered GPUs (FromDevice)
// with a FileStore and a Control that sends setMemLimit/setShare to the
// slice's worker and sets the share on that GPU's Arbiter; Allocate (or
// TryAllocate) at admission and start the worker with the slice's memory
// as its limit; forward each worker report to Report, each acquire/used
// to the Arbiter; Release and Arbiter.Remove when the session ends; call
// Reclaim and Arbiter.Tick on tickers and end the sessions Reclaim
// returns; Close on shutdown.
package slicer
