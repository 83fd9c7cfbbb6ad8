package appliance

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/ingest"
	"github.com/kerf-edge/kerf/internal/testkit"
)

// floodSourcesEnv sets how many distinct sources TestIngestFloodMemory
// publishes from (default 20,000); docs/reliability.md's figures use
// 100,000.
const floodSourcesEnv = "INGEST_FLOOD_SOURCES"

// floodPublishers is how many MQTT connections (and topic nodes, so
// publishers to kerfd) the flood comes from.
const floodPublishers = 100

// floodHeapBase is what a flood may leave on kerfd's heap besides its
// series: nats-server's per-connection caches and the like (100,000
// sources no rule reads left 25 MiB, docs/reliability.md).
const floodHeapBase = 32 << 20

// floodSeriesBound is the most a series may take on the heap: its
// samples, with room for the slice's growth, and its entry.
func floodSeriesBound(samples int) int64 { return int64(samples)*64 + 1024 }

type memSample struct{ heap, rss uint64 }

func sampleMem(t *testing.T, collect bool) memSample {
	t.Helper()
	if collect {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSample{heap: m.HeapInuse, rss: procStatus(t, "VmRSS")}
}

// procStatus reads a kB figure of /proc/self/status, in bytes.
func procStatus(t *testing.T, field string) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// mqttFlooder is an MQTT 3.1.1 connection that publishes QoS 1 messages
// and throws the acknowledgements away: it holds nothing per message, so
// the memory measured is kerfd's.
func mqttFlooder(t *testing.T, addr, id string) (*bufio.Writer, net.Conn) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	body := append(mqttString("MQTT"), 4, 0x02, 0, 60) // clean session, keep-alive 60 s
	body = append(body, mqttString(id)...)
	if _, err := conn.Write(append([]byte{0x10, byte(len(body))}, body...)); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(conn, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("connack %x %v", ack, err)
	}
	conn.SetReadDeadline(time.Time{})
	go io.Copy(io.Discard, conn)
	return bufio.NewWriterSize(conn, 64<<10), conn
}

func mqttString(s string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...)
}

// appendPublish appends a QoS 1 PUBLISH of payload on topic.
func appendPublish(b []byte, topic string, id uint16, payload []byte) []byte {
	n := 2 + len(topic) + 2 + len(payload)
	b = append(b, 0x32)
	for {
		d := byte(n % 128)
		if n /= 128; n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			break
		}
	}
	b = append(b, mqttString(topic)...)
	b = binary.BigEndian.AppendUint16(b, id)
	return append(b, payload...)
}

// A flood of load signals from many distinct sources, over MQTT QoS 1
// through the embedded broker: kerfd's heap stays bounded, the series
// table and the unread pool stop at their caps and the rest is refused.
// Once with a rule that reads every source (so every new source asks for
// a place in the table), once with signals no rule reads.
func TestIngestFloodMemory(t *testing.T) {
	sources := 20000
	if v := os.Getenv(floodSourcesEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < floodPublishers {
			t.Fatalf("%s=%q", floodSourcesEnv, v)
		}
		sources = n
	}
	for _, tc := range []struct {
		name    string
		sources int
		metric  string
		packs   int // per source, of senml.MaxRecords signals each; 0: one signal
	}{
		{"read", sources, "queue_depth", 0},
		{"unread", sources, "temperature", 0},
		// A tenth as many sources, each filling its window.
		{"full-windows", sources / 10, "queue_depth", 1024 / ingest.MaxRecords},
	} {
		t.Run(tc.name, func(t *testing.T) { testIngestFloodMemory(t, tc.sources, tc.metric, tc.packs) })
	}
}

// signalPacks are packs SenML records of metric, ingest.MaxRecords each,
// 50 ms apart and ending now; one record with no time when packs is 0.
func signalPacks(metric string, packs int) [][]byte {
	if packs == 0 {
		return [][]byte{[]byte(`[{"n":"` + metric + `","v":1}]`)}
	}
	var out [][]byte
	for p := range packs {
		b := []byte("[")
		for r := range ingest.MaxRecords {
			if r > 0 {
				b = append(b, ',')
			}
			b = fmt.Appendf(b, `{"n":%q,"v":1,"t":%.2f}`, metric, -float64(p*ingest.MaxRecords+r)*0.05)
		}
		out = append(out, append(b, ']'))
	}
	return out
}

func testIngestFloodMemory(t *testing.T, sources int, metric string, packs int) {
	dir := t.TempDir()
	path := dir + "/kerf.yaml"
	if err := os.WriteFile(path, []byte(`
ingest:
  site: s
  node: n
  rules:
    - name: flood
      trigger: {source: "*/*/*", metric: queue_depth, aggregate: max, window: 1m, threshold: 1000000}
      target: {profile: uniform-20, idleProfile: uniform-20}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path, []string{
		"KERF_STATE_DIR=" + dir, "KERF_LISTEN__QUIC=127.0.0.1:0", "KERF_LISTEN__HTTP=127.0.0.1:0",
		"KERF_GPU__BACKEND=emulated", "KERF_GPU__EMULATED__MEMORY=1GiB",
		"KERF_INGEST__BROKER__EMBEDDED__NATS_LISTEN=127.0.0.1:0", "KERF_INGEST__BROKER__EMBEDDED__MQTT_LISTEN=127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	a := start(t, cfg)
	testkit.WaitFor(t, "the embedded broker", func() bool { return a.ingest.Load() != nil })
	ing := a.ingest.Load()
	before := sampleMem(t, true)

	var peak memSample
	var peakMu sync.Mutex
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peakMu.Lock()
			peak.heap = max(peak.heap, m.HeapInuse)
			peakMu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	start := time.Now()
	payloads := signalPacks(metric, packs)
	var wg sync.WaitGroup
	for p := range floodPublishers {
		w, _ := mqttFlooder(t, ing.Broker.MQTTAddr(), fmt.Sprintf("flood-%03d", p))
		wg.Add(1)
		go func() {
			defer wg.Done()
			var pkt []byte
			for i := p; i < sources; i += floodPublishers {
				topic := fmt.Sprintf("edge/v1/s/n-%03d/load/dev-%06d", p, i)
				for k, payload := range payloads {
					pkt = appendPublish(pkt[:0], topic, uint16((i/floodPublishers*len(payloads)+k)%65535+1), payload)
					if _, err := w.Write(pkt); err != nil {
						t.Errorf("publisher %d: %v", p, err)
						return
					}
				}
			}
			if err := w.Flush(); err != nil {
				t.Errorf("publisher %d: %v", p, err)
			}
		}()
	}
	wg.Wait()
	// Until every message arrived, or none did for 5 s (the broker
	// dropped the rest), and the engine has taken in the queue.
	var last uint64
	lastChange := time.Now()
	testkit.WaitForWithin(t, 5*time.Minute, "kerfd to take in the flood", func() bool {
		pst := ing.Pipeline.Stats()
		if pst.Messages != last {
			last, lastChange = pst.Messages, time.Now()
		}
		settled := pst.Messages >= uint64(sources*len(payloads)) || time.Since(lastChange) > 5*time.Second
		return settled && pst.Queued == 0
	})
	took := time.Since(start)
	close(stop)
	<-sampled
	peak.rss = procStatus(t, "VmHWM")
	after := sampleMem(t, true)

	pst, est := ing.Pipeline.Stats(), ing.Engine.Stats()
	t.Logf("%d sources from %d publishers, %d messages each, QoS 1, in %v: pipeline %d messages, %d signals, %d dropped, %d rejected; "+
		"table %d series, unread %d; refused: %d table_full, %d publisher_cap, %d unread_pool_full; broker: %d slow consumers",
		sources, floodPublishers, len(payloads), took.Round(time.Millisecond), pst.Messages, pst.Signals, pst.Dropped, pst.Rejected,
		est.Series, est.UnreadSeries, est.SeriesDropped, est.RefusedPublisherCap, est.RefusedUnreadPoolFull, ing.Broker.srv.NumSlowConsumers())
	t.Logf("heap in use: %.1f MiB before, %.1f MiB peak, %.1f MiB after (collected); RSS: %.1f MiB before, %.1f MiB peak, %.1f MiB after",
		mib(before.heap), mib(peak.heap), mib(after.heap), mib(before.rss), mib(peak.rss), mib(after.rss))

	if est.Series > cfg.Ingest.MaxSeries {
		t.Errorf("%d series in a table capped at %d", est.Series, cfg.Ingest.MaxSeries)
	}
	if est.UnreadSeries > cfg.Ingest.MaxUnreadSeries {
		t.Errorf("%d series in an unread pool capped at %d", est.UnreadSeries, cfg.Ingest.MaxUnreadSeries)
	}
	if refused := est.SeriesDropped + est.RefusedPublisherCap + est.RefusedUnreadPoolFull; sources > cfg.Ingest.MaxSeries && refused == 0 {
		t.Errorf("%d sources and no refusal at a cap", sources)
	}
	bound := floodHeapBase + int64(est.Series+est.UnreadSeries)*floodSeriesBound(cfg.Ingest.MaxSamplesPerSeries)
	if grew := int64(after.heap) - int64(before.heap); grew > bound {
		t.Errorf("the flood left %.1f MiB more on the heap, over the bound of %.1f MiB for %d series of at most %d samples",
			mib(uint64(grew)), mib(uint64(bound)), est.Series+est.UnreadSeries, cfg.Ingest.MaxSamplesPerSeries)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
