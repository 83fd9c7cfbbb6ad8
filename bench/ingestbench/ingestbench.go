// Package ingestbench measures load-signal ingest end to end: simulated
// devices publish SenML over MQTT QoS 1 to a broker, kerfd's subscriber
// (NATS or MQTT) feeds the pipeline and the rule engine, and it reports
// signals/s, loss, signal→decision latency, and how many re-slices dwell
// and cooldown let through a load oscillating across a threshold. It backs
// `kerf bench ingest`; StartBroker gives it the broker kerfd embeds.
//
// It uses ingest and appliance only through their exported APIs, measures
// and reports, and asserts nothing about speed; no product package may
// import it.
package ingestbench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kerf-edge/kerf/appliance"
	"github.com/kerf-edge/kerf/ingest"
)

// Options drive Run; zero values take defaults.
type Options struct {
	MQTTAddr string // the broker's MQTT listener, host:port (required)
	NATSURL  string // kerfd subscribes here; empty: over MQTT
	// Subscriber is the login kerfd's subscriber uses (Broker.KerfdLogin):
	// devices may not read load signals.
	Subscriber appliance.BrokerLogin
	Topics     int           // simulated devices, one topic each; default 10000
	Publishers int           // MQTT connections (gateways) the devices share; default 8
	InFlight   int           // unacknowledged QoS 1 publishes per connection; default 32
	Duration   time.Duration // publishing time; default 10s
	Rate       int           // signals/s in all; 0: as fast as QoS 1 acks allow
	// Oscillate: after the throughput run, how long a load swings across a
	// rule's threshold, to count the re-slices dwell and cooldown let
	// through; default 5s, negative: skip.
	Oscillate time.Duration
}

// Result is what Run measured.
type Result struct {
	Topics        int           `json:"topics"`
	Publishers    int           `json:"publishers"`
	InFlight      int           `json:"inFlight"` // per publisher
	Via           string        `json:"via"`
	Published     uint64        `json:"published"` // QoS 1 acknowledged
	Delivered     uint64        `json:"delivered"` // signals evaluated by the engine
	Lost          int64         `json:"lost"`
	Seconds       float64       `json:"seconds"`
	SignalsPerSec float64       `json:"signalsPerSec"`
	P50           time.Duration `json:"p50"`
	P99           time.Duration `json:"p99"`
	Max           time.Duration `json:"max"`
	Decisions     uint64        `json:"decisions"`
	Malformed     uint64        `json:"malformed"`
	Dropped       uint64        `json:"dropped"`
	Oscillation   *Oscillation  `json:"oscillation,omitempty"`
}

// Oscillation is the second part of Run: a load that crosses a rule's
// threshold every oscHalfPeriod, and the re-slices the rule made.
type Oscillation struct {
	Seconds   float64       `json:"seconds"`
	Crossings int           `json:"crossings"` // of the threshold, by the published load
	Reslices  uint64        `json:"reslices"`
	Allowed   int           `json:"allowed"` // the most dwell and cooldown allow
	MinDwell  time.Duration `json:"minDwell"`
	Cooldown  time.Duration `json:"cooldown"`
}

// The oscillation rule: max over 100 ms against 50, a profile held at least
// oscDwell, attempts at least oscCooldown apart; the load flips every
// oscHalfPeriod.
const (
	oscDwell      = time.Second
	oscCooldown   = 500 * time.Millisecond
	oscHalfPeriod = 150 * time.Millisecond
	oscDevices    = 50
	oscRule       = "oscillate"
)

// countApplier counts the decisions of the throughput rule and of the
// oscillation rule.
type countApplier struct{ n, osc atomic.Uint64 }

func (c *countApplier) ApplyProfile(_ context.Context, _ ingest.Target, _ string, d ingest.Decision) error {
	if d.Rule == oscRule {
		c.osc.Add(1)
	} else {
		c.n.Add(1)
	}
	return nil
}

// Run simulates devices on Topics topics publishing SenML over MQTT QoS 1
// to a broker that kerfd's subscriber reads, and measures sustained
// signals/s, loss, and signal→decision latency: from the device stamping
// the record to the engine having evaluated its rules with it. The devices
// share Publishers gateway connections, each with at most InFlight
// publishes awaiting a PUBACK; unthrottled, the latency includes waiting
// behind those (Little's law), so it grows with InFlight.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.MQTTAddr == "" {
		return Result{}, errors.New("bench: no MQTT address")
	}
	if o.Topics <= 0 {
		o.Topics = 10000
	}
	if o.Publishers <= 0 {
		o.Publishers = 8
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.InFlight <= 0 {
		o.InFlight = 32
	}
	if o.Oscillate == 0 {
		o.Oscillate = 5 * time.Second
	}
	topics := make([]string, o.Topics)
	for i := range topics {
		topics[i] = fmt.Sprintf("edge/v1/bench/n%d/load/d%d", i/1000, i)
	}
	res := Result{Topics: o.Topics, Publishers: o.Publishers, InFlight: o.InFlight, Via: "mqtt"}
	app := &countApplier{}
	rule := ingest.Rule{Name: "bench", Trigger: ingest.Trigger{Source: "bench/*/*", Metric: "load", Aggregate: ingest.AggMax,
		Window: ingest.Duration(time.Second), Threshold: 90, ActivationThreshold: new(float64(20))},
		Target: ingest.Target{GPU: new(1), Profile: "busy", IdleProfile: "idle"}}
	osc := ingest.Rule{Name: oscRule, Trigger: ingest.Trigger{Source: "bench-osc/*/*", Metric: "load", Aggregate: ingest.AggMax,
		Window: ingest.Duration(100 * time.Millisecond), Threshold: 50},
		Target:   ingest.Target{GPU: new(0), Profile: "busy", IdleProfile: "idle"}, // the other rule drives GPU 1
		Behavior: ingest.Behavior{MinDwell: ingest.Duration(oscDwell), Cooldown: ingest.Duration(oscCooldown)}}
	eng, err := ingest.NewEngine([]ingest.Rule{rule, osc}, app, ingest.EngineOptions{})
	if err != nil {
		return res, err
	}
	var lat []time.Duration // the throughput run's; written by the pipeline goroutine only
	var evaluated atomic.Uint64
	// Queues and the NATS pending limit as kerfd has them by default.
	p := ingest.NewPipeline(eng, ingest.PipelineOptions{Tick: 100 * time.Millisecond,
		Evaluated: func(s ingest.Signal, at time.Time) {
			if s.Topic.Site == "bench" {
				lat = append(lat, at.Sub(s.Time))
				evaluated.Add(1)
			}
		}})
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	pdone := make(chan struct{})
	go func() { p.Run(pctx); close(pdone) }()

	if o.NATSURL != "" {
		res.Via = "nats"
		s, err := ingest.SubscribeNATS(ingest.NATSOptions{URL: o.NATSURL, Name: "kerf-bench",
			Username: o.Subscriber.Name, Password: o.Subscriber.Password}, p)
		if err != nil {
			return res, err
		}
		defer s.Close()
	} else {
		s, err := ingest.SubscribeMQTT(ctx, ingest.MQTTOptions{Broker: "tcp://" + o.MQTTAddr, ClientID: "kerf-bench-sub", QoS: 1,
			Username: o.Subscriber.Name, Password: o.Subscriber.Password}, p)
		if err != nil {
			return res, err
		}
		defer s.Close()
	}

	var published atomic.Uint64
	var wg sync.WaitGroup
	errc := make(chan error, o.Publishers)
	start := time.Now()
	end := start.Add(o.Duration)
	gateways := make([]*benchGateway, o.Publishers)
	for k := range gateways {
		g, err := dialBenchGateway(o.MQTTAddr, fmt.Sprintf("kerf-bench-dev-%d", k), o.InFlight, func() { published.Add(1) })
		if err != nil {
			return res, fmt.Errorf("bench: publisher %d: %w", k, err)
		}
		defer g.close()
		gateways[k] = g
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- publishLoop(ctx, g, k, o, topics, end)
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			return res, err
		}
	}
	elapsed := time.Since(start)
	// Wait for the tail to arrive: until everything is in or nothing moves.
	want := published.Load()
	last, lastMove := uint64(0), time.Now()
	for {
		got := evaluated.Load()
		if got >= want || time.Since(lastMove) > 3*time.Second || ctx.Err() != nil {
			break
		}
		if got != last {
			last, lastMove = got, time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	if o.Oscillate > 0 {
		if res.Oscillation, err = oscillate(ctx, gateways[0], o.Oscillate, app); err != nil {
			return res, err
		}
	}
	stop()
	<-pdone
	st := p.Stats()
	res.Published, res.Delivered = want, uint64(len(lat))
	res.Lost = int64(want) - int64(res.Delivered)
	res.Seconds = elapsed.Seconds()
	res.SignalsPerSec = float64(res.Delivered) / elapsed.Seconds()
	res.Decisions, res.Malformed, res.Dropped = app.n.Load(), st.Malformed, st.Dropped+st.Rejected
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50, res.P99, res.Max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	}
	return res, ctx.Err()
}

// oscillate publishes a load that swings between 20 and 80 across the
// oscillation rule's threshold of 50 every oscHalfPeriod, from oscDevices
// devices, for d, and counts the re-slices the rule makes.
func oscillate(ctx context.Context, g *benchGateway, d time.Duration, app *countApplier) (*Oscillation, error) {
	topics := make([]string, oscDevices)
	for i := range topics {
		topics[i] = fmt.Sprintf("edge/v1/bench-osc/n0/load/d%d", i)
	}
	res := &Oscillation{MinDwell: oscDwell, Cooldown: oscCooldown}
	before := app.osc.Load()
	start := time.Now()
	high := true
	for el := time.Duration(0); el < d && ctx.Err() == nil; el = time.Since(start) {
		if h := (el/oscHalfPeriod)%2 == 0; h != high {
			high = h
			res.Crossings++
		}
		payload := []byte(`[{"n":"load","v":20}]`)
		if high {
			payload = []byte(`[{"n":"load","v":80}]`)
		}
		for _, topic := range topics {
			if err := g.publish(topic, payload); err != nil {
				return nil, fmt.Errorf("bench: oscillate: %w", err)
			}
		}
		if err := g.flush(); err != nil {
			return nil, fmt.Errorf("bench: oscillate: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := g.drain(30 * time.Second); err != nil {
		return nil, fmt.Errorf("bench: oscillate: %w", err)
	}
	time.Sleep(200 * time.Millisecond) // the last signals reach the engine
	elapsed := time.Since(start)
	res.Seconds = elapsed.Seconds()
	res.Reslices = app.osc.Load() - before
	// The first decision is free; after it, one per max(dwell, cooldown).
	res.Allowed = int(elapsed/max(oscDwell, oscCooldown)) + 1
	return res, nil
}

// publishLoop sends one gateway's records round its share of the topics.
func publishLoop(ctx context.Context, g *benchGateway, k int, o Options, topics []string, end time.Time) error {
	var interval time.Duration
	if o.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(o.Publishers) / float64(o.Rate))
	}
	next := time.Now()
	rng := rand.New(rand.NewPCG(uint64(k), 1))
	for i := k; ctx.Err() == nil && time.Now().Before(end); i += o.Publishers {
		payload := make([]byte, 0, 48)
		payload = append(payload, `[{"n":"load","v":`...)
		payload = strconv.AppendInt(payload, int64(rng.IntN(100)), 10)
		payload = append(payload, `,"t":`...)
		payload = strconv.AppendFloat(payload, float64(time.Now().UnixNano())/1e9, 'f', 6, 64)
		payload = append(payload, "}]"...)
		if err := g.publish(topics[i%len(topics)], payload); err != nil {
			return fmt.Errorf("bench: publish: %w", err)
		}
		if interval > 0 {
			// Pace in steps of at least a millisecond: sleeping per
			// publish would cost more than the publish.
			next = next.Add(interval)
			if d := time.Until(next); d > time.Millisecond {
				if err := g.flush(); err != nil {
					return fmt.Errorf("bench: publish: %w", err)
				}
				time.Sleep(d)
			}
		}
	}
	if err := g.drain(30 * time.Second); err != nil {
		return fmt.Errorf("bench: publish: %w", err)
	}
	return nil
}

// StartBroker starts the broker kerfd embeds, as kerfd's defaults have it
// (KERF_* variables apply, and so do the defaults' Go runtime settings, to
// this process), on loopback ports with a scratch store. stop shuts it
// down and removes the store.
func StartBroker() (b *appliance.Broker, stop func(), err error) {
	cfg, err := appliance.LoadConfig("", os.Environ())
	if err != nil {
		return nil, nil, err
	}
	appliance.ApplyRuntime(cfg.Runtime, nil)
	dir, err := os.MkdirTemp("", "kerf-bench-ingest")
	if err != nil {
		return nil, nil, err
	}
	bc := cfg.BrokerConfig()
	// The simulated devices connect without credentials, as devices.
	bc.StoreDir, bc.NATSListen, bc.MQTTListen = dir, "127.0.0.1:0", "127.0.0.1:0"
	bc.Devices, bc.AnonymousOnLoopback = nil, true
	if b, err = appliance.StartBroker(bc, nil); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return b, func() { b.Shutdown(); os.RemoveAll(dir) }, nil
}
