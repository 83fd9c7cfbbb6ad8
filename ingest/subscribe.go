package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
)

// MQTTOptions connect an MQTT 3.1.1 subscriber.
type MQTTOptions struct {
	Broker             string // tcp://host:1883, ssl://host:8883
	ClientID           string // default kerfd-<site>-<node>, or kerfd-ingest
	Username, Password string
	TLS                *tls.Config
	// Status, when set, is kerfd's own status topic: "online" (retained) on
	// every connect, and an MQTT Will of "offline" (retained).
	Status  *Topic
	QoS     byte          // subscription QoS; default 0
	Timeout time.Duration // connect and subscribe; default 10s
	Log     *slog.Logger
}

// MQTTSubscriber feeds a Pipeline from load and status topics.
type MQTTSubscriber struct {
	c       mqtt.Client
	o       MQTTOptions
	subErrs atomic.Uint64
}

// SubscribeMQTT connects, subscribes to every load and status topic and
// keeps doing so across reconnects until Close.
func SubscribeMQTT(ctx context.Context, o MQTTOptions, p *Pipeline) (*MQTTSubscriber, error) {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.ClientID == "" {
		o.ClientID = "kerfd-ingest"
		if o.Status != nil {
			o.ClientID = "kerfd-" + o.Status.Site + "-" + o.Status.Node
		}
	}
	s := &MQTTSubscriber{o: o}
	handler := func(_ mqtt.Client, m mqtt.Message) { p.HandleMQTT(m.Topic(), m.Payload()) }
	co := mqtt.NewClientOptions().AddBroker(o.Broker).SetClientID(o.ClientID).SetProtocolVersion(4).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(false).SetConnectTimeout(o.Timeout).
		SetMaxReconnectInterval(10 * time.Second).SetKeepAlive(30 * time.Second).SetOrderMatters(true)
	if o.Username != "" {
		co.SetUsername(o.Username).SetPassword(o.Password)
	}
	if o.TLS != nil {
		co.SetTLSConfig(o.TLS)
	}
	if o.Status != nil {
		co.SetWill(o.Status.MQTT(), StatusOffline, 1, true)
	}
	// subscribed reports the first subscription's outcome: paho runs the
	// connect handler on its own goroutine, after Connect's token is done.
	subscribed := make(chan error, 1)
	co.SetOnConnectHandler(func(c mqtt.Client) {
		// Runs on every (re)connect: a clean session forgets subscriptions.
		tok := c.SubscribeMultiple(map[string]byte{LoadFilterMQTT: o.QoS, StatusFilterMQTT: o.QoS}, handler)
		err := fmt.Errorf("no SUBACK within %v", o.Timeout)
		if tok.WaitTimeout(o.Timeout) {
			err = tok.Error()
		}
		select {
		case subscribed <- err:
		default:
		}
		if err != nil {
			s.subErrs.Add(1)
			o.Log.Error("ingest: mqtt subscribe failed", "broker", o.Broker, "err", err)
			return
		}
		if o.Status != nil {
			c.Publish(o.Status.MQTT(), 1, true, StatusOnline)
		}
	})
	co.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		o.Log.Warn("ingest: mqtt connection lost; reconnecting", "broker", o.Broker, "err", err)
	})
	s.c = mqtt.NewClient(co)
	tok := s.c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		s.c.Disconnect(0)
		return nil, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("ingest: mqtt %s: %w", o.Broker, err)
	}
	// Return subscribed, so that nothing published after this is missed.
	select {
	case err := <-subscribed:
		if err == nil {
			return s, nil
		}
		s.c.Disconnect(0)
		return nil, fmt.Errorf("ingest: mqtt %s: subscribe: %w", o.Broker, err)
	case <-time.After(o.Timeout):
		s.c.Disconnect(0)
		return nil, fmt.Errorf("ingest: mqtt %s: not subscribed after %v", o.Broker, o.Timeout)
	case <-ctx.Done():
		s.c.Disconnect(0)
		return nil, ctx.Err()
	}
}

// Close publishes "offline" on the status topic and disconnects.
func (s *MQTTSubscriber) Close() {
	if s.o.Status != nil && s.c.IsConnectionOpen() {
		s.c.Publish(s.o.Status.MQTT(), 1, true, StatusOffline).WaitTimeout(time.Second)
	}
	s.c.Disconnect(250)
}

// NATSOptions connect a NATS subscriber.
type NATSOptions struct {
	URL                string // nats://host:4222, tls://host:4222; comma-separated for a cluster
	Name               string
	Username, Password string
	Token              string
	CredsFile          string // a .creds file (JWT and NKey seed)
	TLS                *tls.Config
	// Status, when set, gets "online" on connect and "offline" on Close.
	// NATS has no Will; MQTT devices keep theirs.
	Status       *Topic
	PendingLimit int // messages buffered in the client before it drops; default 65536
	Timeout      time.Duration
	Log          *slog.Logger
}

// NATSSubscriber feeds a Pipeline from load and status subjects.
type NATSSubscriber struct {
	nc     *nats.Conn
	subs   []*nats.Subscription
	o      NATSOptions
	closed chan struct{}
}

// SubscribeNATS connects and subscribes to every load and status subject.
func SubscribeNATS(o NATSOptions, p *Pipeline) (*NATSSubscriber, error) {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.PendingLimit <= 0 {
		o.PendingLimit = 65536
	}
	if o.Name == "" {
		o.Name = "kerfd-ingest"
	}
	closed := make(chan struct{})
	opts := []nats.Option{nats.Name(o.Name), nats.Timeout(o.Timeout), nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second), nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			o.Log.Warn("ingest: nats", "err", err)
		})}
	if o.Username != "" {
		opts = append(opts, nats.UserInfo(o.Username, o.Password))
	}
	if o.Token != "" {
		opts = append(opts, nats.Token(o.Token))
	}
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	if o.TLS != nil {
		opts = append(opts, nats.Secure(o.TLS))
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("ingest: nats %s: %w", o.URL, err)
	}
	s := &NATSSubscriber{nc: nc, o: o, closed: closed}
	for _, subj := range []string{LoadFilterNATS, StatusFilterNATS} {
		sub, err := nc.Subscribe(subj, func(m *nats.Msg) { p.HandleNATS(m.Subject, m.Data) })
		if err == nil {
			err = sub.SetPendingLimits(o.PendingLimit, 64<<20)
		}
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("ingest: nats subscribe %s: %w", subj, err)
		}
		s.subs = append(s.subs, sub)
	}
	if err := nc.FlushTimeout(o.Timeout); err != nil {
		nc.Close()
		return nil, fmt.Errorf("ingest: nats %s: %w", o.URL, err)
	}
	if o.Status != nil {
		if err := nc.Publish(o.Status.NATS(), []byte(StatusOnline)); err != nil {
			o.Log.Warn("ingest: nats status", "err", err)
		}
	}
	return s, nil
}

// Dropped is how many messages the client dropped as a slow consumer.
func (s *NATSSubscriber) Dropped() (n int) {
	for _, sub := range s.subs {
		d, _ := sub.Dropped()
		n += d
	}
	return n
}

// Close publishes "offline", drains and closes.
func (s *NATSSubscriber) Close() error {
	if s.o.Status != nil {
		_ = s.nc.Publish(s.o.Status.NATS(), []byte(StatusOffline))
	}
	err := s.nc.Drain()
	if errors.Is(err, nats.ErrConnectionClosed) {
		err = nil
	}
	select {
	case <-s.closed:
	case <-time.After(s.o.Timeout):
		s.nc.Close()
	}
	return err
}
