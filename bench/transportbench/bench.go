// Package transportbench measures the transport against raw baselines on
// the same transport, in the same run: a sync call's round trip against a
// raw echo, pipelined async calls against raw pipelined messages, and a
// bulk host-to-device copy against a raw bulk stream. It backs
// `kerf bench transport` and `make bench`.
//
// It uses the transport only through its exported API; its raw QUIC
// baseline runs on internal/quicnet, the QUIC the transport runs on. It
// measures and reports; it asserts nothing about speed, and no product
// package may import it.
package transportbench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/gpu/hostmem"
	"github.com/kerf-edge/kerf/internal/quicnet"
	"github.com/kerf-edge/kerf/transport"
)

// Options size the run.
type Options struct {
	Bulk       uint64 // bytes of the bulk copy (default 1 GiB)
	SyncCalls  int    // round trips timed (default 20000)
	AsyncCalls int    // pipelined calls per round (default 500000)
	// AsyncRounds, BulkRounds and QUICBulkRounds repeat those
	// measurements, Kerf and raw taking turns; each reports its median
	// round (defaults 5, 3 and 2). A round of async calls lasts tens of
	// milliseconds, where one scheduler hiccup moves either figure by
	// half. A QUIC bulk round lasts seconds, so it runs fewer times.
	AsyncRounds    int
	BulkRounds     int
	QUICBulkRounds int
	// Progress, if set, gets a line per measurement.
	Progress io.Writer
}

func (o *Options) defaults() {
	if o.Bulk == 0 {
		o.Bulk = 1 << 30
	}
	if o.SyncCalls == 0 {
		o.SyncCalls = 20000
	}
	if o.AsyncCalls == 0 {
		o.AsyncCalls = 500000
	}
	if o.AsyncRounds == 0 {
		o.AsyncRounds = 5
	}
	if o.BulkRounds == 0 {
		o.BulkRounds = 3
	}
	if o.QUICBulkRounds == 0 {
		o.QUICBulkRounds = 2
	}
}

// Result is one path's figures. Durations are in microseconds and rates
// per second, so the JSON reads plainly.
type Result struct {
	Path           string   `json:"path"`
	SyncP50us      float64  `json:"sync_p50_us"`
	SyncP99us      float64  `json:"sync_p99_us"`
	RawSyncP50us   float64  `json:"raw_sync_p50_us"`
	RawSyncP99us   float64  `json:"raw_sync_p99_us"`
	AsyncPerSec    float64  `json:"async_calls_per_s"`
	RawAsyncPerSec float64  `json:"raw_msgs_per_s"`
	AsyncRatio     float64  `json:"async_ratio"`
	BulkBytes      uint64   `json:"bulk_bytes"`
	BulkGBps       float64  `json:"bulk_GBps"`
	RawBulkGBps    float64  `json:"raw_bulk_GBps"`
	BulkRatio      float64  `json:"bulk_ratio"`
	Targets        []Target `json:"targets"`
}

// Target is one goal from the transport issue and whether this run met it.
type Target struct {
	Name string `json:"name"`
	Goal string `json:"goal"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// rig is an in-process Kerf server plus raw servers on the same transports.
type rig struct {
	dir     string
	srv     *transport.Server
	tok     []byte
	fp      transport.Fingerprint
	sock    string
	quic    *transport.QUICListener
	rawSock string
	rawQUIC *quic.Listener
	rawTr   *quic.Transport
	cert    tls.Certificate
	cancel  context.CancelFunc
	done    chan struct{}
}

const rawALPN = "kerf-raw-bench"

func newRig(bulk uint64) (*rig, error) {
	dir, err := os.MkdirTemp("", "kerf-bench")
	if err != nil {
		return nil, err
	}
	r := &rig{dir: dir, done: make(chan struct{})}
	tokens, _ := auth.OpenTokenStore("")
	tok, err := tokens.Issue("bench", 0)
	if err != nil {
		return nil, err
	}
	r.tok = []byte(tok)
	r.srv = &transport.Server{Backend: hostmem.New(bulk + 64<<20), Auth: tokens, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if r.cert, r.fp, err = transport.LoadOrCreateCert(dir); err != nil {
		return nil, err
	}
	r.sock = filepath.Join(dir, "kerf.sock")
	uln, err := transport.ListenUnix(r.sock)
	if err != nil {
		return nil, err
	}
	if r.quic, err = transport.ListenQUIC("127.0.0.1:0", r.cert); err != nil {
		return nil, err
	}
	r.rawSock = filepath.Join(dir, "raw.sock")
	rawUnix, err := net.Listen("unix", r.rawSock)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	r.rawTr = &quic.Transport{Conn: udp}
	if r.rawQUIC, err = r.rawTr.Listen(quicnet.ServerTLS(r.cert, rawALPN), quicnet.Config(transport.HandshakeTimeout)); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		go r.srv.ServeUnix(ctx, uln)
		go r.srv.ServeQUIC(ctx, r.quic)
		go serveRawUnix(rawUnix, bulk)
		go serveRawQUIC(ctx, r.rawQUIC, bulk)
		<-ctx.Done()
		rawUnix.Close()
		r.rawQUIC.Close()
		r.rawTr.Close()
		udp.Close()
		r.srv.Wait()
	}()
	return r, nil
}

func (r *rig) close() {
	r.cancel()
	<-r.done
	os.RemoveAll(r.dir)
}

func (r *rig) dial(ctx context.Context, path string) (*transport.Client, error) {
	opts := transport.Options{Token: r.tok, Name: "bench"}
	if path == "unix" {
		return transport.DialUnix(ctx, r.sock, opts)
	}
	return transport.DialQUIC(ctx, r.quic.Addr().String(), transport.QUICOptions{Options: opts, Fingerprint: r.fp})
}

func (r *rig) dialRaw(ctx context.Context, path string) (io.ReadWriteCloser, error) {
	if path == "unix" {
		var d net.Dialer
		return d.DialContext(ctx, "unix", r.rawSock)
	}
	tc := quicnet.ClientTLS(rawALPN, func(der []byte) error {
		if transport.FingerprintOf(der) != r.fp {
			return errors.New("raw server: certificate fingerprint does not match")
		}
		return nil
	})
	conn, err := quicnet.Dial(ctx, r.rawQUIC.Addr().String(), tc, quicnet.Config(transport.HandshakeTimeout))
	if err != nil {
		return nil, err
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &rawQUICStream{st, conn}, nil
}

type rawQUICStream struct {
	*quic.Stream
	conn *quicnet.Conn
}

func (s *rawQUICStream) Close() error {
	s.Stream.Close()
	return s.conn.Close()
}

// Run measures each path ("unix", "quic").
func Run(ctx context.Context, opts Options) ([]Result, error) {
	opts.defaults()
	r, err := newRig(opts.Bulk)
	if err != nil {
		return nil, err
	}
	defer r.close()
	var out []Result
	for _, path := range []string{"unix", "quic"} {
		res, err := r.measure(ctx, path, opts)
		if err != nil {
			return out, fmt.Errorf("%s: %w", path, err)
		}
		res.judge()
		out = append(out, res)
	}
	return out, nil
}

func (r *rig) progress(opts Options, format string, args ...any) {
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, format+"\n", args...)
	}
}

func (r *rig) measure(ctx context.Context, path string, opts Options) (Result, error) {
	res := Result{Path: path, BulkBytes: opts.Bulk}
	c, err := r.dial(ctx, path)
	if err != nil {
		return res, err
	}
	defer c.Close()
	raw, err := r.dialRaw(ctx, path)
	if err != nil {
		return res, err
	}
	defer raw.Close()
	rawR, rawW := bufio.NewReaderSize(raw, 256<<10), bufio.NewWriterSize(raw, 256<<10)

	// (a) sync round trips.
	kerfLat := make([]time.Duration, 0, opts.SyncCalls)
	rawLat := make([]time.Duration, 0, opts.SyncCalls)
	var msg [16]byte
	for i := -1000; i < opts.SyncCalls; i++ { // 1000 warm-up rounds each
		t0 := time.Now()
		if _, _, err := c.MemGetInfo(); err != nil {
			return res, err
		}
		t1 := time.Now()
		msg[0] = 'e'
		if _, err := raw.Write(msg[:]); err != nil {
			return res, err
		}
		if _, err := io.ReadFull(rawR, msg[:]); err != nil {
			return res, err
		}
		t2 := time.Now()
		if i >= 0 {
			kerfLat = append(kerfLat, t1.Sub(t0))
			rawLat = append(rawLat, t2.Sub(t1))
		}
	}
	res.SyncP50us, res.SyncP99us = pct(kerfLat, 50), pct(kerfLat, 99)
	res.RawSyncP50us, res.RawSyncP99us = pct(rawLat, 50), pct(rawLat, 99)
	r.progress(opts, "%s sync: kerf p50 %.1f µs p99 %.1f µs; raw p50 %.1f µs p99 %.1f µs", path, res.SyncP50us, res.SyncP99us, res.RawSyncP50us, res.RawSyncP99us)

	// (b) pipelined async calls: small async memsets, then one sync.
	p, err := c.MemAlloc(4096)
	if err != nil {
		return res, err
	}
	var kerfRates, rawRates []float64
	for range opts.AsyncRounds {
		kerf, err := asyncRound(c, p, opts.AsyncCalls)
		if err != nil {
			return res, err
		}
		raw, err := rawAsyncRound(rawR, rawW, opts.AsyncCalls)
		if err != nil {
			return res, err
		}
		kerfRates, rawRates = append(kerfRates, kerf), append(rawRates, raw)
	}
	res.AsyncPerSec, res.RawAsyncPerSec = Median(kerfRates), Median(rawRates)
	res.AsyncRatio = res.AsyncPerSec / res.RawAsyncPerSec
	r.progress(opts, "%s async: kerf %.0f calls/s; raw %.0f msgs/s (%.2f×); medians of %d rounds, kerf %s, raw %s", path,
		res.AsyncPerSec, res.RawAsyncPerSec, res.AsyncRatio, opts.AsyncRounds, joinRounds(kerfRates, "%.1fM", 1e-6), joinRounds(rawRates, "%.1fM", 1e-6))

	// (c) bulk host-to-device. Both destinations are touched beforehand,
	// so neither side pays first-touch page faults.
	src := make([]byte, opts.Bulk)
	for i := 0; i < len(src); i += 4096 {
		src[i] = byte(i >> 12)
	}
	dst, err := c.MemAlloc(opts.Bulk)
	if err != nil {
		return res, err
	}
	if err := c.Memset(dst, 0, 1, opts.Bulk, false, 0); err != nil {
		return res, err
	}
	if err := rawBulkPrepare(rawR, rawW, opts.Bulk); err != nil {
		return res, err
	}
	rounds := opts.BulkRounds
	if path == "quic" {
		rounds = opts.QUICBulkRounds
	}
	var kerfBulk, rawBulk []float64
	for range rounds {
		t0 := time.Now()
		if err := c.MemcpyHtoD(dst, src); err != nil {
			return res, err
		}
		kerfBulk = append(kerfBulk, float64(opts.Bulk)/time.Since(t0).Seconds()/1e9)
		gbps, err := rawBulkRound(raw, rawR, rawW, src)
		if err != nil {
			return res, err
		}
		rawBulk = append(rawBulk, gbps)
	}
	if err := c.MemFree(dst); err != nil {
		return res, err
	}
	res.BulkGBps, res.RawBulkGBps = Median(kerfBulk), Median(rawBulk)
	res.BulkRatio = res.BulkGBps / res.RawBulkGBps
	r.progress(opts, "%s bulk: kerf %.2f GB/s; raw %.2f GB/s (%.2f×); medians of %d rounds, kerf %s, raw %s", path,
		res.BulkGBps, res.RawBulkGBps, res.BulkRatio, rounds, joinRounds(kerfBulk, "%.2f", 1), joinRounds(rawBulk, "%.2f", 1))
	return res, nil
}

// asyncRound times n pipelined async memsets and the sync call after them.
func asyncRound(c *transport.Client, p uint64, n int) (float64, error) {
	t0 := time.Now()
	for i := range n {
		if err := c.Memset(p+uint64(i%1024)*4, uint32(i), 4, 1, true, 0); err != nil {
			return 0, err
		}
	}
	if err := c.Synchronize(); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

// rawAsyncRound sends n messages of the size of a Kerf async memset frame
// (48 bytes) and waits for one acknowledgement.
func rawAsyncRound(r *bufio.Reader, w *bufio.Writer, n int) (float64, error) {
	t0 := time.Now()
	var hdr [9]byte
	hdr[0] = 'p'
	binary.LittleEndian.PutUint64(hdr[1:], uint64(n))
	w.Write(hdr[:])
	var m48 [48]byte
	for range n {
		w.Write(m48[:])
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	if _, err := r.ReadByte(); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

// rawBulkPrepare has the raw server allocate and touch its destination.
func rawBulkPrepare(r *bufio.Reader, w *bufio.Writer, size uint64) error {
	var hdr [9]byte
	hdr[0] = 'a'
	binary.LittleEndian.PutUint64(hdr[1:], size)
	w.Write(hdr[:])
	if err := w.Flush(); err != nil {
		return err
	}
	_, err := r.ReadByte()
	return err
}

// rawBulkRound streams src to the raw server in 1 MiB writes.
func rawBulkRound(raw io.Writer, r *bufio.Reader, w *bufio.Writer, src []byte) (float64, error) {
	var hdr [9]byte
	hdr[0] = 'b'
	binary.LittleEndian.PutUint64(hdr[1:], uint64(len(src)))
	w.Write(hdr[:])
	t0 := time.Now()
	if err := w.Flush(); err != nil {
		return 0, err
	}
	for off := 0; off < len(src); off += 1 << 20 {
		if _, err := raw.Write(src[off:min(off+1<<20, len(src))]); err != nil {
			return 0, err
		}
	}
	if _, err := r.ReadByte(); err != nil {
		return 0, err
	}
	return float64(len(src)) / time.Since(t0).Seconds() / 1e9, nil
}

// Median of x; of an even count, the mean of the middle two.
func Median(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	n := len(s)
	if n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[n/2]
}

// joinRounds formats each round with format, scaled by scale.
func joinRounds(x []float64, format string, scale float64) string {
	out := make([]string, len(x))
	for i, v := range x {
		out[i] = fmt.Sprintf(format, v*scale)
	}
	return strings.Join(out, " ")
}

func pct(d []time.Duration, p int) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[min(len(s)-1, len(s)*p/100)].Nanoseconds()) / 1e3
}

// judge records the issue's targets for this path.
func (r *Result) judge() {
	add := func(name, goal, got string, met bool) {
		r.Targets = append(r.Targets, Target{name, goal, got, met})
	}
	add("sync p50", fmt.Sprintf("≤ raw + 10 µs (%.1f µs)", r.RawSyncP50us+10), fmt.Sprintf("%.1f µs", r.SyncP50us), r.SyncP50us <= r.RawSyncP50us+10)
	add("async rate", "≥ 50% of raw", fmt.Sprintf("%.0f%%", 100*r.AsyncRatio), r.AsyncRatio >= 0.5)
	switch r.Path {
	case "unix":
		add("async rate, local", "≥ 500k calls/s", fmt.Sprintf("%.0fk", r.AsyncPerSec/1e3), r.AsyncPerSec >= 500e3)
		add("bulk, shared memory", "≥ 1.5× raw Unix stream", fmt.Sprintf("%.2f×", r.BulkRatio), r.BulkRatio >= 1.5)
	case "quic":
		add("bulk, QUIC", "≥ 85% of raw QUIC", fmt.Sprintf("%.0f%%", 100*r.BulkRatio), r.BulkRatio >= 0.85)
	}
}

// The raw servers speak a minimal protocol: a mode byte, then
//
//	'e': a 15-byte rest of an echo message, echoed back whole (16 bytes)
//	'p': u64 count, count 48-byte messages, answered by one byte
//	'a': u64 size: allocate and touch a destination of size bytes,
//	     answered by one byte
//	'b': u64 size (at most the destination's), then size bytes, answered
//	     by one byte
func serveRaw(rw io.ReadWriteCloser, bulk uint64) {
	defer rw.Close()
	br, bw := bufio.NewReaderSize(rw, 256<<10), bufio.NewWriterSize(rw, 256<<10)
	var dst []byte
	var buf [48]byte
	for {
		mode, err := br.ReadByte()
		if err != nil {
			return
		}
		switch mode {
		case 'e':
			buf[0] = mode
			if _, err := io.ReadFull(br, buf[1:16]); err != nil {
				return
			}
			bw.Write(buf[:16])
		case 'p', 'a', 'b':
			if _, err := io.ReadFull(br, buf[:8]); err != nil {
				return
			}
			n := binary.LittleEndian.Uint64(buf[:8])
			switch {
			case mode == 'p':
				for range n {
					if _, err := io.ReadFull(br, buf[:48]); err != nil {
						return
					}
				}
			case mode == 'a' && n <= bulk:
				dst = make([]byte, n)
				for i := 0; i < int(n); i += 4096 {
					dst[i] = 1 // touch every page before the clock starts
				}
			case mode == 'b' && n <= uint64(len(dst)):
				if _, err := io.ReadFull(br, dst[:n]); err != nil {
					return
				}
			default:
				return
			}
			bw.WriteByte(1)
		default:
			return
		}
		if err := bw.Flush(); err != nil {
			return
		}
	}
}

func serveRawUnix(ln net.Listener, bulk uint64) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go serveRaw(c, bulk)
	}
}

func serveRawQUIC(ctx context.Context, ln *quic.Listener, bulk uint64) {
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		go func() {
			for {
				st, err := conn.AcceptStream(ctx)
				if err != nil {
					return
				}
				go serveRaw(st, bulk)
			}
		}()
	}
}

// RawUnixStream is the raw Unix bulk baseline on its own, for benchmarks
// elsewhere that compare a copy against the same bytes streamed through a
// bare Unix socket into a destination touched beforehand.
type RawUnixStream struct {
	ln   net.Listener
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
}

// StartRawUnixStream serves the raw protocol on a socket in dir, connects
// to it and has the server allocate and touch a destination of size bytes.
func StartRawUnixStream(ctx context.Context, dir string, size uint64) (*RawUnixStream, error) {
	ln, err := net.Listen("unix", filepath.Join(dir, "raw.sock"))
	if err != nil {
		return nil, err
	}
	go serveRawUnix(ln, size)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", ln.Addr().String())
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &RawUnixStream{ln: ln, conn: conn, br: bufio.NewReader(conn), bw: bufio.NewWriter(conn)}
	if err := rawBulkPrepare(s.br, s.bw, size); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Round streams src (at most the destination's size) and returns GB/s.
func (s *RawUnixStream) Round(src []byte) (float64, error) {
	return rawBulkRound(s.conn, s.br, s.bw, src)
}

// Close ends the connection and the server.
func (s *RawUnixStream) Close() {
	s.conn.Close()
	s.ln.Close()
}
