package ingestbench

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// benchGateway is one simulated MQTT 3.1.1 gateway that many devices share:
// their readings go out as QoS 1 PUBLISH packets on one connection, with at
// most inFlight unacknowledged. Packets are encoded and decoded with paho's
// codec; what paho's client adds per message (a token, a store entry, two
// goroutine hand-offs, a write syscall, three reads per PUBACK) is left out,
// because the benchmark's devices share the cores kerfd is measured on.
// Writes are buffered and flushed whenever the gateway would wait for a
// PUBACK, so a busy gateway sends many packets per syscall.
type benchGateway struct {
	conn  net.Conn
	w     *bufio.Writer
	slots chan struct{} // one per unacknowledged PUBLISH

	mu      sync.Mutex
	pending []uint16 // packet IDs awaiting a PUBACK, oldest first
	nextID  uint16
	err     error // the reader's error
	acked   func()
	done    chan struct{} // closed when the reader stops
}

// dialBenchGateway connects and completes the MQTT handshake. acked runs on
// every PUBACK.
func dialBenchGateway(addr, clientID string, inFlight int, acked func()) (*benchGateway, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	g := &benchGateway{conn: conn, w: bufio.NewWriterSize(conn, 64<<10), slots: make(chan struct{}, inFlight),
		acked: acked, done: make(chan struct{})}
	c := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	c.ProtocolName, c.ProtocolVersion, c.CleanSession, c.ClientIdentifier = "MQTT", 4, true, clientID
	r := bufio.NewReaderSize(conn, 64<<10)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	p, err := packets.ReadPacket(r)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if ca, ok := p.(*packets.ConnackPacket); !ok || ca.ReturnCode != packets.Accepted {
		conn.Close()
		return nil, fmt.Errorf("connect refused: %v", p)
	}
	conn.SetDeadline(time.Time{})
	go g.readAcks(r)
	return g, nil
}

// readAcks matches PUBACKs to publishes; MQTT sends them in order
// [MQTT-4.6.0-2], and a gap or a stranger is an error.
func (g *benchGateway) readAcks(r *bufio.Reader) {
	defer close(g.done)
	for {
		p, err := packets.ReadPacket(r)
		g.mu.Lock()
		if err == nil {
			err = g.matchAck(p)
		}
		g.err = err
		g.mu.Unlock()
		if err != nil {
			return
		}
		<-g.slots
		g.acked()
	}
}

// matchAck takes the oldest pending packet ID off for its PUBACK; mu is
// held.
func (g *benchGateway) matchAck(p packets.ControlPacket) error {
	ack, ok := p.(*packets.PubackPacket)
	switch {
	case !ok:
		return fmt.Errorf("unexpected %v", p)
	case len(g.pending) == 0 || g.pending[0] != ack.MessageID:
		return fmt.Errorf("PUBACK %d out of order (awaiting %v)", ack.MessageID, g.pending[:min(len(g.pending), 3)])
	}
	g.pending = g.pending[1:]
	return nil
}

// publish queues one QoS 1 PUBLISH, waiting while the window is full.
func (g *benchGateway) publish(topic string, payload []byte) error {
	select {
	case g.slots <- struct{}{}:
	default:
		if err := g.w.Flush(); err != nil {
			return err
		}
		select {
		case g.slots <- struct{}{}:
		case <-g.done:
			return g.readerErr()
		}
	}
	g.mu.Lock()
	g.nextID++
	if g.nextID == 0 { // 0 is not a packet ID
		g.nextID = 1
	}
	id := g.nextID
	g.pending = append(g.pending, id)
	g.mu.Unlock()
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.Qos, p.TopicName, p.MessageID, p.Payload = 1, topic, id, payload
	return p.Write(g.w)
}

// flush sends what publish has buffered.
func (g *benchGateway) flush() error { return g.w.Flush() }

// drain flushes and waits until every publish is acknowledged.
func (g *benchGateway) drain(timeout time.Duration) error {
	if err := g.w.Flush(); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for len(g.slots) > 0 {
		select {
		case <-g.done:
			return g.readerErr()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d publishes unacknowledged after %v", len(g.slots), timeout)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

func (g *benchGateway) readerErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil {
		return errors.New("connection closed")
	}
	return g.err
}

// close sends DISCONNECT and closes the connection.
func (g *benchGateway) close() {
	packets.NewControlPacket(packets.Disconnect).Write(g.w)
	g.w.Flush()
	g.conn.Close()
	<-g.done
}
