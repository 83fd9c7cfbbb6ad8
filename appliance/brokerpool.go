package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kerf-edge/kerf/ingest"
	"github.com/kerf-edge/kerf/pool"
)

// joinPool makes opts a member of cfg.Pool: cluster routes to its peers,
// JetStream clustered, every write synced. It returns the system
// account's user.
func joinPool(cfg BrokerConfig, opts *server.Options) (BrokerLogin, error) {
	user, password, err := cfg.Pool.ClusterOptions(opts, cfg.Pool.Node, cfg.PoolJoined)
	if err != nil {
		return BrokerLogin{}, fmt.Errorf("pool: %w", err)
	}
	return BrokerLogin{Name: user, Password: password}, nil
}

// createPoolMQTTStreams caps the MQTT layer's retained messages, as
// createMQTTStreams does, once the pool's JetStream has a quorum, with the
// pool's replicas. QoS 1 messages stay in the stream nats-server makes
// (replicated, on file): an in-memory stream of one replica would live
// on one member, and the others' MQTT subscribers would depend on it.
func createPoolMQTTStreams(srv *server.Server, kerfd BrokerLogin, cfg BrokerConfig, log *slog.Logger) {
	if cfg.MaxRetained <= 0 {
		return
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.UserInfo(kerfd.Name, kerfd.Password), nats.Name("kerfd-setup"))
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	for srv.Running() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = capMQTTRetained(ctx, js, cfg.MaxRetained, cfg.MaxRetainedSize, cfg.Pool.Replicas())
		cancel()
		if err == nil {
			return
		}
		time.Sleep(time.Second)
	}
}

// addRoute dials a member of the pool joined at run time, as the options
// the server runs with, so that a later reload (device logins) keeps it.
func (b *Broker) addRoute(u *url.URL) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	opts := b.opts.Clone()
	opts.Routes = append(opts.Routes, u)
	if err := b.srv.ReloadOptions(opts); err != nil {
		return fmt.Errorf("broker: adding a route: %w", err)
	}
	b.opts = opts
	return nil
}

// validatePool checks the pool section: a pool is built on the embedded
// broker.
func (c *Config) validatePool() []error {
	errs := c.Pool.Validate("pool")
	if c.Pool.Enabled() && (!c.Ingest.Enabled || c.Ingest.Broker.Mode != "embedded") {
		errs = append(errs, errors.New("pool: a pool needs the embedded broker (ingest.enabled: true, ingest.broker.mode: embedded)"))
	}
	for _, l := range []struct{ name, addr string }{{pool.AdvertiseQUIC, c.Listen.QUIC}, {pool.AdvertiseHTTP, c.Listen.HTTP}} {
		if err := c.Pool.MayAdvertise(l.name, l.addr); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Pool.Advertise.HTTP != "" && c.Listen.HTTP == "" {
		errs = append(errs, errors.New("pool.advertise.http: listen.http is empty, so there is no operator listener to publish"))
	}
	if c.Pool.Node != "" {
		if err := ingest.ValidSegment(c.Pool.Node); err != nil {
			errs = append(errs, fmt.Errorf("pool.node: %w", err))
		}
	}
	return errs
}

// PoolNode is this node's name in the pool: pool.node, else its name in
// topics.
func (c *Config) PoolNode() string {
	if c.Pool.Node != "" {
		return c.Pool.Node
	}
	return c.IngestNode()
}

// PoolMembersPath keeps the pool's other members as this member last saw
// them, for the bundles issued while kerfd does not serve.
func (c *Config) PoolMembersPath() string { return filepath.Join(c.StateDir, "pool-members.json") }

// PoolJoinedPath keeps the peers joined at run time (kerf pool join).
func (c *Config) PoolJoinedPath() string { return filepath.Join(c.StateDir, "pool-peers.json") }

// poolOfBroker is the pool section for the broker, nil outside a pool.
func (c *Config) poolOfBroker() *pool.Config {
	if !c.Pool.Enabled() {
		return nil
	}
	p := c.Pool
	p.Node = c.PoolNode()
	return &p
}
