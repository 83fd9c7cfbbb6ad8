// Package kerfenv declares every KERF_* environment variable that Kerf's
// programs read or set, so that each name is written once. It holds names
// only; each reader parses and checks its own values.
package kerfenv

// The tenant side: set by `kerf run` for the program it starts, read by the
// shim (libcuda.so.1).
const (
	Bundle  = "KERF_BUNDLE"  // path of the tenant's token bundle; `kerf run` and `kerf info` read it too
	Lease   = "KERF_LEASE"   // the lease ID the program's sessions belong to
	Devices = "KERF_DEVICES" // server device ordinals, comma-separated
	Via     = "KERF_VIA"     // "unix" or "quic"
	Server  = "KERF_SERVER"  // a QUIC address overriding the bundle's
	Memory  = "KERF_MEMORY"  // bytes each session may use, within its slice
	// ProcTrace names a file to which the shim appends every name the
	// program asks cuGetProcAddress for, with whether it was served.
	ProcTrace = "KERF_PROC_TRACE"
	// Trace makes the shim write a line for every driver call: "1" to
	// stderr, another value names a file to append to.
	Trace = "KERF_TRACE"
)

// The command line.
const (
	Token      = "KERF_TOKEN"       // the older name of Bundle for `kerf run` and `kerf info`; still honoured
	API        = "KERF_API"         // the operator REST API's base URL
	AdminToken = "KERF_ADMIN_TOKEN" // the operator's bearer token
	// APIFingerprint pins the operator API's certificate (sha256:…) when
	// KERF_API is https://.
	APIFingerprint = "KERF_API_FINGERPRINT"
	CPUProfile     = "KERF_CPUPROFILE" // a benchmark's CPU profile output
	// LeaseDir holds the files of leases `kerf request` holds (default:
	// $XDG_RUNTIME_DIR/kerf/leases, else ~/.kerf/leases).
	LeaseDir = "KERF_LEASE_DIR"
)

// kerfd.
const (
	// ConfigPrefix starts every configuration override: KERF_GPU__BACKEND
	// sets gpu.backend (a double underscore nests).
	ConfigPrefix = "KERF_"
	// Worker marks a kerfd process started as a tenant's worker.
	Worker = "KERF_WORKER"
)

// Tests only.
const (
	// TestAllowShimDriver, set to "1", lets the real-GPU backend (gpu/cuda)
	// load Kerf's own client shim as its driver, so that tests run it over
	// a second kerfd's emulated GPU. Never set it in production: kerfd
	// would forward tenants' calls to another kerfd, not drive a GPU. The
	// backend logs a warning whenever it is used.
	TestAllowShimDriver = "KERF_TEST_ALLOW_SHIM_DRIVER"
)
