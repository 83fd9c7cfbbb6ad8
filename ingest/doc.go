// Package ingest owns the load-signal path from devices to decisions: the
// topic and subject conventions, SenML (RFC 8428) decoding and validation,
// the MQTT and NATS subscribers, bounded per-source queues, sliding windows,
// and the policy engine that turns windows into profile decisions.
//
// It must not start brokers (appliance does), change GPU layouts (the slicer
// does, behind Applier) or serve HTTP; it exposes events and counters for
// the API to read. Nothing here sleeps on wall time in tests: every
// time-dependent part takes a clock.Clock (internal/clock).
package ingest
