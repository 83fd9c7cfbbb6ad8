package ingest

import (
	"fmt"
	"strings"
)

// Topic kinds.
const (
	KindLoad   = "load"
	KindStatus = "status"
)

// Subscription filters for every site, node and source.
const (
	LoadFilterMQTT     = "edge/v1/+/+/load/+"
	StatusFilterMQTT   = "edge/v1/+/+/status/+"
	LoadFilterNATS     = "edge.v1.*.*.load.*"
	StatusFilterNATS   = "edge.v1.*.*.status.*"
	maxTopicSegmentLen = 64
)

// Topic is one parsed edge/v1/{site}/{node}/{kind}/{source} topic.
type Topic struct {
	Site, Node, Kind, Source string
}

// MQTT is the topic in MQTT form.
func (t Topic) MQTT() string {
	return "edge/v1/" + t.Site + "/" + t.Node + "/" + t.Kind + "/" + t.Source
}

// NATS is the topic in NATS subject form.
func (t Topic) NATS() string {
	return "edge.v1." + t.Site + "." + t.Node + "." + t.Kind + "." + t.Source
}

// Key names the source across sites: site/node/source. Rule globs match it.
func (t Topic) Key() string { return t.Site + "/" + t.Node + "/" + t.Source }

// ParseTopic parses an MQTT topic name.
func ParseTopic(s string) (Topic, error) { return parseTopic(s, '/') }

// ParseSubject parses a NATS subject.
func ParseSubject(s string) (Topic, error) { return parseTopic(s, '.') }

func parseTopic(s string, sep byte) (Topic, error) {
	parts := strings.Split(s, string(sep))
	if len(parts) != 6 || parts[0] != "edge" || parts[1] != "v1" {
		return Topic{}, fmt.Errorf("topic %q: want edge%cv1%c{site}%c{node}%c{load|status}%c{source}", s, sep, sep, sep, sep, sep)
	}
	t := Topic{Site: parts[2], Node: parts[3], Kind: parts[4], Source: parts[5]}
	if t.Kind != KindLoad && t.Kind != KindStatus {
		return Topic{}, fmt.Errorf("topic %q: kind %q: want load or status", s, t.Kind)
	}
	for _, p := range []struct{ name, v string }{{"site", t.Site}, {"node", t.Node}, {"source", t.Source}} {
		if err := ValidSegment(p.v); err != nil {
			return Topic{}, fmt.Errorf("topic %q: %s: %w", s, p.name, err)
		}
	}
	return t, nil
}

// ValidSegment reports whether s can be a site, node or source: 1 to 64 of
// A-Z a-z 0-9 - _ (the characters that mean the same in MQTT and NATS).
func ValidSegment(s string) error {
	if s == "" || len(s) > maxTopicSegmentLen {
		return fmt.Errorf("%q: want 1 to %d characters", s, maxTopicSegmentLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%q: character %q not allowed (want A-Z a-z 0-9 - _)", s, c)
		}
	}
	return nil
}
