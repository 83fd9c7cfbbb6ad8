package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/kerf-edge/kerf/ingest"
	"github.com/kerf-edge/kerf/profiles"
)

// Policy rules come from the config file and from the REST API. The API
// stores rule documents; kerfd validates them as ingest rules when they
// are written, and keeps the engine's rule set in step with the config's
// plus the stored ones.

// ruleValidator checks a rule document written through the API.
type ruleValidator struct{}

var _ profiles.RuleValidator = ruleValidator{}

// ValidateRule implements profiles.RuleValidator.
func (ruleValidator) ValidateRule(name string, doc json.RawMessage) error {
	_, err := decodeRule(name, doc)
	return err
}

func decodeRule(name string, doc json.RawMessage) (ingest.Rule, error) {
	var r ingest.Rule
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("rule %s: %w", name, err)
	}
	if r.Name == "" {
		r.Name = name
	}
	if r.Name != name {
		return r, fmt.Errorf("rule %s: its document names it %q", name, r.Name)
	}
	if _, err := ingest.ValidateRules([]ingest.Rule{r}); err != nil {
		return r, err
	}
	return r, nil
}

// rulesPoll paces how soon a rule written through the API takes effect.
const rulesPoll = time.Second

// syncRules keeps the engine's rules equal to the config's plus the
// API's, until ctx ends.
func syncRules(ctx context.Context, base []ingest.Rule, store *profiles.Store, eng *ingest.Engine, log *slog.Logger) {
	var last []byte
	t := time.NewTicker(rulesPoll)
	defer t.Stop()
	for {
		stored, err := store.Rules()
		if err != nil {
			log.Warn("reading policy rules", "err", err)
		} else {
			rules := append([]ingest.Rule(nil), base...)
			for _, sr := range stored {
				r, err := decodeRule(sr.Name, sr.Rule)
				if err != nil {
					log.Warn("stored policy rule skipped", "rule", sr.Name, "err", err)
					continue
				}
				rules = append(rules, r)
			}
			key, _ := json.Marshal(rules)
			if !bytes.Equal(key, last) {
				if err := eng.SetRules(rules); err != nil {
					log.Warn("policy rules not applied", "err", err)
				} else {
					log.Info("policy rules in force", "rules", len(rules))
					last = key
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ingestStats reports the load-signal pipeline's counters to the metrics,
// as node totals: a series per device would be thousands of series.
type ingestStats struct {
	running *atomic.Pointer[Ingest] // nil until Run starts load signals
}

var _ profiles.IngestStats = ingestStats{}

// IngestStats implements profiles.IngestStats.
func (s ingestStats) IngestStats() []profiles.IngestStat {
	in := s.running.Load()
	if in == nil {
		return nil
	}
	st, es := in.Pipeline.Stats(), in.Engine.Stats()
	return []profiles.IngestStat{{Source: "all", Messages: st.Messages, Bytes: st.Bytes, Dropped: st.Dropped + st.Rejected, Malformed: st.Malformed,
		Series: uint64(es.Series), SeriesRefused: es.SeriesDropped, SeriesForgotten: es.SeriesForgotten,
		UnreadSeries: uint64(es.UnreadSeries), Refused: map[string]uint64{ingest.RefusedTableFull: es.SeriesDropped,
			ingest.RefusedPublisherCap: es.RefusedPublisherCap, ingest.RefusedUnreadPoolFull: es.RefusedUnreadPoolFull}}}
}
