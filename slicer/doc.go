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
//   - placement (slicer.go, placement.go): n slices on n distinct GPUs of
//     this node, cut to the size asked (below), per-tenant GPU limits
//     counting the fractions asked, idle reclaim, a fair FIFO queue
//     (Allocate) and a fail-fast TryAllocate; a *Refusal says what
//     exists and what would fit;
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
// Which slice a request gets. A request asks for a size: a fraction of a
// GPU's memory and compute, or memory (and the same part of compute), or
// neither, a whole GPU. On each GPU that matches, a free profile slice of
// exactly that size (within MiB rounding) is taken as it is; otherwise a
// slice of that size is carved from the capacity no tenant holds,
// emptying the profile's free slices that leave the least room unused,
// then the fewest. A request fits whenever a GPU's unheld capacity covers
// it. GPUs are chosen so as to empty the fewest profile slices, then
// profile slice before carving, then the smallest GPU, then the fullest.
// The tenant is granted and charged what it asked. On release a carved
// slice is removed and the emptied profile slices come back as room
// frees: the active profile is the shape the GPU keeps, or returns to.
// A session that names its device but no size takes the smallest free
// profile slice (Request.AnySlice).
//
// Grants and re-slicing. A held slice's grant (its memory quota and
// compute share) is guaranteed: a re-slice moves it to the profile slice
// closest to its size among those at least as big as its grant (growing
// it if that is bigger) and may shrink it back to its grant, never below.
// A held slice that no profile slice covers stays outside the profile at
// its grant until released. Only ApplyOptions.Force shrinks a held slice
// below its grant, to the profile's slice (never below what its tenant
// uses), and lowers the grant and the charge with it. Compute above the
// share is burstable: the Arbiter lends idle GPU time, which is taken
// back as others get busy.
//
// Settings across restarts: Config.DefaultPolicy (kerfd's configuration)
// wins over the default kept in the Store; tenants' own policies, the
// active profile and the operator's profiles are restored from it.
// Built-in profiles cannot be replaced or removed, nor the active one
// removed. Origins says which setting came from where.
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
