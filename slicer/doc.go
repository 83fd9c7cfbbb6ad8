// Package slicer decides how kerfd's GPUs are cut into slices and who holds
// them. A slice is a memory quota plus a compute share on one physical GPU;
// a layout is the set of slices on each GPU; a profile is a named layout
// template (uniform-20, uniform-10, mixed-2x25-5x10, or the operator's own).
//
// The package owns:
//
//   - the model and its validation (model.go, profile.go);
//   - placement: n slices on n distinct GPUs of this node, per-tenant GPU
//     limits counting fractions, idle reclaim and a fair FIFO queue
//     (slicer.go);
//   - live re-slicing: a pure Plan from the current layout to a profile and
//     Apply, which resizes live slices in place through Control and keeps
//     what cannot be done yet pending (plan.go);
//   - the compute-share arbiter that grants GPU time budgets to worker
//     processes by weighted fair share (share.go);
//   - persistence of layout, active profile and policies (store.go).
//
// It must not touch sessions, sockets, workers or backends: it never imports
// appliance or transport, never opens a device and never sleeps. kerfd drives
// it (Allocate/Release/Report/Reclaim/Apply) and implements Control by
// messaging each tenant's worker. Time comes from an injectable Clock.
package slicer
