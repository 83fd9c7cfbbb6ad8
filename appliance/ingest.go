package appliance

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kerf-edge/kerf/ingest"
)

// Ingest is the running load-signal path: the embedded broker (embedded
// mode only), one subscriber, the pipeline and the engine.
type Ingest struct {
	Broker   *Broker // nil in external mode
	Engine   *ingest.Engine
	Pipeline *ingest.Pipeline
	close    func()
	cancel   context.CancelFunc
	done     chan struct{}
}

// StartIngest starts what cfg.Ingest describes and sends decisions to a,
// and each signal to observe (nil: none).
// kerfd subscribes to its embedded broker over NATS (see docs/benchmarks.md
// for why); to an external one with the configured protocol.
func StartIngest(cfg Config, a ingest.Applier, observe func(ingest.Signal), log *slog.Logger) (*Ingest, error) {
	ic := cfg.Ingest
	eng, err := ingest.NewEngine(ic.Rules, a, ingest.EngineOptions{Log: log, SeriesTTL: ic.SeriesTTL,
		MaxSeries: ic.MaxSeries, MaxSeriesPerPublisher: ic.MaxSeriesPerPublisher,
		MaxUnreadSeries: ic.MaxUnreadSeries, UnreadTTL: ic.UnreadTTL, MaxSamples: ic.MaxSamplesPerSeries})
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	p := ingest.NewPipeline(eng, ingest.PipelineOptions{Log: log, QueuePerSource: ic.Queue.PerSource,
		QueueTotal: ic.Queue.Total, MaxSources: ic.Queue.MaxSources, Tick: ic.Tick, Observe: observe})
	in := &Ingest{Engine: eng, Pipeline: p, done: make(chan struct{})}
	status := &ingest.Topic{Site: ic.Site, Node: cfg.IngestNode(), Kind: ingest.KindStatus, Source: "kerfd"}
	ext := ic.Broker.External
	switch {
	case ic.Broker.Mode == "embedded":
		b, err := StartBroker(cfg.BrokerConfig(), log)
		if err != nil {
			return nil, err
		}
		k := b.KerfdLogin()
		var tc *tls.Config // the NATS listener speaks TLS only beyond loopback
		if strings.HasPrefix(b.ClientURL(), "tls://") {
			tc = b.ClientTLS()
		}
		s, err := ingest.SubscribeNATS(ingest.NATSOptions{URL: b.ClientURL(), Name: "kerfd", Username: k.Name,
			Password: k.Password, TLS: tc, Status: status, Log: log}, p)
		if err != nil {
			b.Shutdown()
			return nil, err
		}
		in.Broker = b
		in.close = func() { s.Close(); b.Shutdown() }
	case ext.Protocol == "nats":
		tc, err := cfg.IngestTLS()
		if err != nil {
			return nil, err
		}
		s, err := ingest.SubscribeNATS(ingest.NATSOptions{URL: ext.URL, Name: "kerfd", Username: ext.Username,
			Password: ext.Password, Token: ext.Token, CredsFile: ext.CredsFile, TLS: tc, Status: status, Log: log}, p)
		if err != nil {
			return nil, err
		}
		in.close = func() { s.Close() }
	default:
		tc, err := cfg.IngestTLS()
		if err != nil {
			return nil, err
		}
		s, err := ingest.SubscribeMQTT(context.Background(), ingest.MQTTOptions{Broker: ext.URL, Username: ext.Username,
			Password: ext.Password, TLS: tc, Status: status, Log: log}, p)
		if err != nil {
			return nil, err
		}
		in.close = s.Close
	}
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	go func() { p.Run(ctx); close(in.done) }()
	return in, nil
}

// validateSeriesBounds checks the series table's bounds: each at least one
// (a zero would silently take the engine's default), a publisher's share
// no more than the table, and unread series kept at least a tick.
func (in *IngestConfig) validateSeriesBounds() []error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"max_series", in.MaxSeries}, {"max_series_per_publisher", in.MaxSeriesPerPublisher}, {"max_unread_series", in.MaxUnreadSeries},
		{"max_samples_per_series", in.MaxSamplesPerSeries}} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("ingest.%s %d: want at least 1", f.name, f.v))
		}
	}
	if in.MaxSeriesPerPublisher > in.MaxSeries {
		errs = append(errs, fmt.Errorf("ingest.max_series_per_publisher %d: more than max_series %d", in.MaxSeriesPerPublisher, in.MaxSeries))
	}
	if in.UnreadTTL < time.Second {
		errs = append(errs, fmt.Errorf("ingest.unread_ttl %v: want at least 1s", in.UnreadTTL))
	}
	return errs
}

// Close stops the subscriber (publishing kerfd's offline status), the
// pipeline and the embedded broker.
func (in *Ingest) Close() {
	in.close()
	in.cancel()
	<-in.done
}
