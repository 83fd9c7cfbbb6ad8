// Package appliance wires kerfd together: configuration, the state
// directory, TLS identity and tenant tokens, the GPU backend, the tenant
// servers (QUIC and the local Unix socket), the health endpoints, and the
// load-signal path: the embedded NATS/MQTT broker and StartIngest.
//
// It is the only place where packages meet. Nothing imports appliance; it
// holds no protocol, GPU or policy logic of its own.
package appliance
