// Package jobs owns triggered tenants: job definitions (a program, the
// tenant it runs as, a slice request, a trigger over load signals,
// concurrency, cooldown and time limit), their validation, and the runner
// that starts instances when the trigger fires and stops them when the
// signal falls away.
//
// The runner reads triggers through ingest's watches, decides on a tick
// (pure logic in decide.go: stabilisation, per-source wants, cooldown,
// crash backoff), and starts instances through a Starter: kerfd's opens a
// lease for the job's tenant and runs the program under the shim, exactly
// as `kerf run` does (intercept/launcher). It bounds instances and their
// memory, sends their output to the log line by line, and records every
// start and end as an event and in Prometheus series.
//
// It must not place slices, re-slice, or talk to the REST API: leases
// come from kerfd's allocator, re-slicing from policy rules, and the API
// reaches jobs through kerfd's wiring (appliance).
//
// Semantics worth knowing:
//   - A source at or above the threshold wants floor(value/threshold)
//     instances, at least one and at most concurrency.perSource; below the
//     activation threshold, or stale, none; in between it keeps what it had.
//   - concurrency.max caps the instances over all sources (the highest wants
//     first); concurrency.min instances run whatever the signal says.
//   - An instance that ends on its own with code 0 succeeded; with another
//     code, or by a signal it was not sent, it crashed. Crashes in a row
//     (and starts that fail) delay the job's next start: 1s, 2s, 4s ... up
//     to the runner's MaxBackoff; a success resets it. A start that finds
//     the node full is not a crash: the job retries after MinBackoff, so a
//     rule that re-slices to make room is met at once.
package jobs
