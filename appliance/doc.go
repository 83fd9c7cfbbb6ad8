// Package appliance wires kerfd together: configuration, the state
// directory, TLS identity and tenant tokens, the GPU backend, the tenant
// servers (QUIC and the local Unix socket), the health endpoints, and the
// load-signal path: the embedded NATS/MQTT broker and StartIngest.
//
// It also runs each tenant session in a worker process (supervisor.go,
// workers.go, worker.go) and speaks to those workers in its own control
// protocol (control.go).
//
// It is the only place where packages meet. Nothing imports appliance; it
// holds no tenant-facing protocol, GPU or policy logic of its own.
package appliance
