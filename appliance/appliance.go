package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/ingest"
	"github.com/kerf-edge/kerf/internal/connguard"
	"github.com/kerf-edge/kerf/internal/units"
	"github.com/kerf-edge/kerf/jobs"
	"github.com/kerf-edge/kerf/pool"
	"github.com/kerf-edge/kerf/profiles"
	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/slicer"
	"github.com/kerf-edge/kerf/slicer/discover"
	"github.com/kerf-edge/kerf/transport"
)

// Appliance is a configured kerfd, ready to serve.
type Appliance struct {
	cfg     Config
	log     *slog.Logger
	backend gpu.Backend
	kind    string // "emulated" or "cuda"
	tokens  *auth.TokenStore
	shares  *arbiters
	workers *workerSet // empty when tenants run in kerfd's process
	node    *node
	server  *transport.Server
	nvml    *discover.NVML // open when kerfd drives real GPUs
	api     *profiles.Server
	policy  policy
	rules   *policyRules
	// The triggered jobs: the API's view, their tokens, their metrics.
	jobs       *jobSet
	jobBundles *jobBundles
	jobMetrics *jobs.Metrics
	ingest     *atomic.Pointer[Ingest] // the load-signal path, once Run starts it
	devices    *deviceLogins           // the broker's logins issued through the API; nil without the embedded broker
	pool       *pool.Pool              // nil outside a pool
	poolHeld   *poolHeld               // in a pool, the tokens it holds as this member last saw them
	published  publishedAddrs          // in a pool, where this member is reached
	fp         transport.Fingerprint

	budget connBudget
	lock   *os.File // the state directory's lock, held while the Appliance lives
	quicLn *transport.QUICListener
	unixLn *net.UnixListener
	httpLn *httpListener
	// httpTLS: the operator listener speaks TLS (it is beyond loopback).
	httpTLS bool

	closeOnce sync.Once
}

// Close releases what New acquired: listeners, the API's store, the
// slicer's state (flushed). Run calls it on the way out; call it yourself
// for an Appliance that never ran.
func (a *Appliance) Close() {
	a.closeOnce.Do(func() {
		a.closeListeners()
		a.api.Close()
		a.node.sl.Close()
		if a.nvml != nil {
			a.nvml.Close()
		}
		a.lock.Close()
	})
}

// New prepares the state directory, TLS identity, token store, backend
// and listeners. Nothing is served until Run. Each part is built from the
// parts it needs, in that order: arbiters and the worker set, the slicer
// (which resizes slices through the workers), the supervisor that starts
// workers, the tenant server, the node and the operator API.
func New(cfg Config, log *slog.Logger) (*Appliance, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	lock, err := lockState(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	a, err := newLocked(cfg, log, lock)
	if err != nil {
		lock.Close()
	}
	return a, err
}

// newLocked is New once the state directory is locked.
func newLocked(cfg Config, log *slog.Logger, lock *os.File) (*Appliance, error) {
	cert, fp, err := transport.LoadOrCreateCert(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	tokens, err := auth.OpenTokenStore(cfg.TokensPath())
	if err != nil {
		return nil, err
	}
	backend, nvml, kind, err := selectBackend(cfg, log)
	if err != nil {
		return nil, err
	}
	devices := backend.Devices()
	shares := newShares(cfg, kind, len(devices))
	workers := newWorkerSet(cfg.Tenants.StopGrace, cfg.Tenants.Limits, newSMPlanner(backend, log))
	gpus, reserve := slicerGPUs(devices), slicerReserve(kind)
	sl, err := openSlicer(cfg, gpus, reserve, workers, log)
	if err != nil {
		return nil, err
	}
	ledger := newPool(cfg, log)
	slices := newAllocator(sl, workers, ledger, log)
	budget := newConnBudget(cfg.Listen.Limits, connguard.DescriptorLimit())
	jobTokens, _ := auth.OpenTokenStore("") // in memory: cannot fail
	server := &transport.Server{Backend: backend, Auth: jobAuth{file: tokens, jobs: jobTokens}, Allocator: slices, Log: log,
		Limits: budget.tenant, HandshakeTimeout: cfg.Listen.Limits.HandshakeTimeout,
		LeaseMemory: func(adm transport.Admission) transport.LeaseMemory { return slices.mem.open(adm) }}
	if cfg.Tenants.Isolation == "process" {
		jail, err := newWorkerJail(cfg.Tenants.Worker, largestMemory(devices), log)
		if err != nil {
			sl.Close()
			return nil, err
		}
		sup, err := newSupervisor(cfg, kind, jail, log, workers, slices, shares)
		if err != nil {
			sl.Close()
			return nil, err
		}
		server.Handoff = sup.handoff
	} else {
		log.Warn("tenant sessions run inside kerfd (tenants.isolation: inprocess): a faulting tenant can take kerfd down")
	}
	var samples func() []discover.Sample
	if nvml != nil {
		samples = nvml.Sample
	}
	n := &node{sl: sl, slices: slices, devices: devices, gpus: gpus, reserve: reserve, samples: samples, workers: workers, server: server, log: log}
	running := new(atomic.Pointer[Ingest])
	var logins *deviceLogins
	var apiDevices profiles.Devices
	if cfg.Ingest.Enabled && cfg.Ingest.Broker.Mode == "embedded" {
		logins = newDeviceLogins(cfg)
		apiDevices = logins
	}
	home := ruleHome{node: cfg.PoolNode(), site: cfg.Ingest.Site}
	if ledger != nil {
		home.members = ledger.Nodes
	}
	rules := newPolicyRules(cfg.Ingest, len(gpus), home)
	jobSet, jobMetrics := newJobSet(cfg.Jobs.Enabled), jobs.NewMetrics()
	var apiPool profiles.Pool
	var apiTokens profiles.Tokens = tokens
	var shared profiles.Shared
	var policies profiles.TenantPolicies = tenantPolicies{sl}
	if ledger != nil {
		apiPool, apiTokens, shared = poolAPI{ledger}, poolTokens{p: ledger, local: tokens}, poolShared{ledger}
		policies = poolPolicies{p: ledger, local: tenantPolicies{sl}}
	}
	apiReach := func() auth.Bundle { return reach(cfg, fp, cfg.Listen.QUIC) }
	// In a pool, a bundle names this member by the QUIC address it
	// publishes, known once its listener is bound (below).
	var published publishedAddrs
	if ledger != nil {
		apiReach = func() auth.Bundle { return poolReach(ledger, reach(cfg, fp, published.QUIC)) }
	}
	api, err := profiles.New(apiConfig(cfg), profiles.Deps{Node: n, Tokens: apiTokens, Shared: shared, Rules: rules, Jobs: jobSet, Ingest: ingestStats{running}, Log: log, Pool: apiPool,
		Reach: apiReach, Devices: apiDevices, Policies: policies,
		Collectors: append([]prometheus.Collector{refusalCollector{workers}}, jobMetrics.Collectors()...)})
	if err != nil {
		sl.Close()
		return nil, fmt.Errorf("operator API: %w", err)
	}
	var held *poolHeld
	if ledger != nil {
		held = newPoolHeld()
	}
	a := &Appliance{cfg: cfg, log: log, backend: backend, kind: kind, tokens: tokens, shares: shares, workers: workers,
		node: n, server: server, nvml: nvml, api: api, policy: policy{sl: sl, api: api}, rules: rules, ingest: running,
		jobs: jobSet, jobMetrics: jobMetrics, devices: logins, pool: ledger, poolHeld: held, fp: fp, budget: budget, lock: lock}
	if err := a.seedProfiles(); err != nil {
		log.Warn("built-in profiles not listed in the API", "err", err)
	}
	if ledger != nil {
		watchPoolState(ledger, tokens, held, tenantPolicies{sl}, api)
	}
	a.jobBundles = &jobBundles{cfg: cfg, store: jobTokens, paths: map[string]string{}, reach: func() auth.Bundle { return reach(cfg, fp, a.QUICAddr()) }}
	tokens.OnRevoke = func(tenant string) {
		a.jobBundles.revoke(tenant)
		if n := server.CloseTenant(tenant) + workers.closeTenant(tenant); n > 0 {
			log.Info("closed sessions of revoked tenant", "tenant", tenant, "sessions", n)
		}
	}
	if err := a.listen(cert); err != nil {
		a.closeListeners()
		api.Close()
		sl.Close()
		return nil, err
	}
	if ledger != nil {
		if published, err = a.advertised(); err != nil {
			a.closeListeners()
			api.Close()
			sl.Close()
			return nil, fmt.Errorf("pool: %w", err)
		}
		a.published = published
	}
	return a, nil
}

func apiConfig(cfg Config) profiles.Config {
	maxBody, _ := units.ParseBytes(cfg.API.MaxBody) // validated with the config
	var node string
	if cfg.Pool.Enabled() {
		node = cfg.PoolNode()
	}
	return profiles.Config{MetricsNode: node, StateDir: cfg.StateDir, MaxBodyBytes: int64(maxBody), EventsKept: cfg.API.EventsKept, PublicMetrics: cfg.API.PublicMetrics,
		AdminTokenFiles: adminTokenFiles(cfg), HistoryWindow: cfg.History.Window, HistoryStep: cfg.History.Step, HistoryMaxSeries: cfg.History.MaxSeries}
}

// seedProfiles lists the slicer's built-in profiles in the API's store,
// marked built in, so operators can apply them by name; the API refuses
// to replace or delete them. Only the built-in ones: the operator's own
// are the store's, and a profile the operator deleted stays deleted.
func (a *Appliance) seedProfiles() error {
	st := a.api.Store()
	for _, p := range slicer.Builtin() {
		if old, err := st.Profile(p.Name); err == nil && old.BuiltIn {
			continue
		}
		if _, _, err := st.PutProfile(builtinProfile(p, a.node.gpus), false); err != nil {
			return err
		}
	}
	// Earlier versions listed every profile the slicer knew as built in,
	// derived ones too: unmark those, and drop the derived ones, whose
	// names the API cannot address.
	all, err := st.Profiles()
	if err != nil {
		return err
	}
	for _, p := range all {
		if p.BuiltIn || p.Description != builtinDescription {
			continue
		}
		if strings.Contains(p.Name, ";") {
			err = st.DeleteProfile(p.Name)
		} else {
			p.Description = ""
			_, _, err = st.PutProfile(p, false)
		}
		if err != nil {
			return err
		}
		a.log.Info("profile no longer listed as built in", "profile", p.Name)
	}
	return nil
}

func (a *Appliance) listen(cert tlsCert) error {
	var err error
	if a.quicLn, err = transport.ListenQUICWith(a.cfg.Listen.QUIC, cert, transport.QUICListenOptions{KeepAlive: a.cfg.Listen.QUICKeepAlive, IdleTimeout: a.cfg.Listen.QUICIdleTimeout}); err != nil {
		return fmt.Errorf("QUIC listener on %s: %w", a.cfg.Listen.QUIC, err)
	}
	if a.unixLn, err = transport.ListenUnix(a.cfg.UnixPath()); err != nil {
		return fmt.Errorf("unix listener on %s: %w", a.cfg.UnixPath(), err)
	}
	if a.cfg.Listen.HTTP != "" {
		ln, err := net.Listen("tcp", a.cfg.Listen.HTTP)
		if err != nil {
			return fmt.Errorf("HTTP listener on %s: %w", a.cfg.Listen.HTTP, err)
		}
		a.httpLn = newHTTPListener(ln, a.budget, a.log)
		cert, fp, ok, err := a.cfg.HTTPCert()
		if err != nil {
			return err
		}
		if ok {
			a.httpTLS = true
			a.httpLn.Listener = serveTLS(a.httpLn.Listener, cert)
			a.log.Info("operator API: TLS beyond loopback", "fingerprint", fp.String(), "pinned", a.cfg.APIFingerprintPath())
		}
	}
	return nil
}

func (a *Appliance) closeListeners() {
	if a.quicLn != nil {
		a.quicLn.Close()
	}
	if a.unixLn != nil {
		a.unixLn.Close()
	}
	if a.httpLn != nil {
		a.httpLn.Close()
	}
}

// QUICAddr is the UDP address tenants reach over QUIC.
func (a *Appliance) QUICAddr() string { return a.quicLn.Addr().String() }

// HTTPAddr is the operator endpoint's address, or "" when disabled.
func (a *Appliance) HTTPAddr() string {
	if a.httpLn == nil {
		return ""
	}
	return a.httpLn.Addr().String()
}

// Fingerprint is the appliance certificate's fingerprint.
func (a *Appliance) Fingerprint() transport.Fingerprint { return a.fp }

// Server is the tenant server.
func (a *Appliance) Server() *transport.Server { return a.server }

// Sessions lists the live tenant sessions, in workers or in process.
func (a *Appliance) Sessions() []transport.SessionInfo {
	return liveSessions(a.server, a.workers)
}

// Tokens is the tenant token store.
func (a *Appliance) Tokens() *auth.TokenStore { return a.tokens }

// Node is the node as the operator API sees it: GPUs, slices, tenants,
// and live re-slicing.
func (a *Appliance) Node() profiles.Node { return a.node }

// observeSignal keeps a load signal in the page's history.
func (a *Appliance) observeSignal(s ingest.Signal) {
	t := s.Time
	if t.IsZero() || t.After(s.Arrived) {
		t = s.Arrived
	}
	a.api.ObserveSignal(s.Topic.Key(), s.Metric, t, s.Value)
}

// Profile is the stored profile called name, as the operator API has it.
func (a *Appliance) Profile(name string) (api.Profile, error) {
	return a.api.Store().Profile(name)
}

// Pending is the work the active layout has not finished, with reasons.
func (a *Appliance) Pending() []slicer.Pending { return a.node.sl.Status().Pending }

// GPUTime is a tenant's GPU time so far, as of its workers' latest report.
type GPUTime struct {
	Busy time.Duration
	At   time.Time // when kerfd received the report
}

// TenantGPUTime is each tenant's GPU time as its workers last reported it
// (a tenant with several workers: their sum, as of the latest); empty when
// tenants run in kerfd's process.
func (a *Appliance) TenantGPUTime() map[string]GPUTime { return a.workers.gpuTimeByTenant() }

// Run serves until ctx ends, then stops accepting, ends every session and
// returns.
func (a *Appliance) Run(ctx context.Context) error {
	for _, d := range a.backend.Devices() {
		a.log.Info("device", "name", d.Name, "memory", d.TotalMem, "sms", d.SMs, "emulated", d.Emulated)
	}
	if err := a.firstToken(); err != nil {
		return err
	}
	if tok, err := a.api.Bootstrap(); err != nil {
		return err
	} else if tok != "" {
		if err := saveAdminToken(a.cfg, tok); err != nil {
			return err
		}
		// The log may be a journal others read: it names the file, never
		// the token.
		a.log.Info("created the operator API admin token", "file", a.cfg.AdminTokenPath())
	}
	if wrote, err := PublishUserCopies(a.cfg); err != nil {
		a.log.Warn("the command line's copies of the default bundle and admin token not written", "dir", a.cfg.UserDir, "err", err)
	} else if len(wrote) > 0 {
		a.log.Info("wrote the command line's copies of the default bundle and admin token", "files", wrote)
	}
	defer a.Close()
	if a.cfg.Ingest.Enabled {
		in, err := StartIngest(a.cfg, a.policy, a.observeSignal, a.log)
		if err != nil {
			return fmt.Errorf("load signals: %w", err)
		}
		a.ingest.Store(in)
		defer in.Close()
		if in.Broker != nil {
			if err := a.devices.attach(in.Broker); err != nil {
				return fmt.Errorf("device logins: %w", err)
			}
			a.log.Info("embedded broker ready", "mqtt", in.Broker.MQTTAddr(), "nats", in.Broker.ClientURL())
			if a.pool != nil {
				if err := a.startPool(in.Broker); err != nil {
					return err
				}
				defer a.pool.Close()
				mctx, forget := context.WithCancel(ctx)
				remembered := make(chan struct{})
				published := make(chan struct{})
				go func() { a.rememberPoolMembers(mctx); close(remembered) }()
				go func() {
					publishOwnTokens(mctx, a.pool, a.tokens, a.poolHeld, a.log, ownTokensInterval)
					close(published)
				}()
				defer func() { forget(); <-remembered; <-published }()
				a.log.Info("joining the pool", "pool", a.cfg.Pool.Name, "node", a.cfg.PoolNode(), "cluster", a.cfg.Pool.Listen, "peers", a.cfg.Pool.Peers,
					"advertisedQUIC", a.published.QUIC, "advertisedHTTP", a.published.HTTP)
			}
		}
		rctx, stopRules := context.WithCancel(ctx)
		defer stopRules()
		go syncRules(rctx, a.rules, a.api.Store(), in.Engine, a.log)
	}
	a.log.Info("kerfd ready", "backend", a.kind, "quic", a.QUICAddr(), "unix", a.cfg.UnixPath(),
		"http", a.HTTPAddr(), "fingerprint", a.fp.String(), "state", a.cfg.StateDir)
	if a.httpLn != nil {
		// The page takes the admin token after '#'; the log names its
		// file, never the token.
		scheme := "http://"
		if a.httpTLS {
			scheme = "https://"
		}
		a.log.Info("web page", "url", scheme+reachable(a.HTTPAddr())+"/#token=ADMIN_TOKEN", "adminToken", a.cfg.AdminTokenPath())
	}
	a.log.Info("connection limits", "descriptors", a.budget.descriptors, "unauthenticated", a.budget.tenant.Unauthenticated,
		"unauthenticatedPerPeer", a.budget.tenant.PerPeer, "http", a.budget.http, "httpPerPeer", a.budget.httpPerPeer)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopJobs := a.startJobs(ctx, a.ingest.Load())
	go a.reclaimLoop(ctx)
	go reloadTokens(ctx, a.tokens, tokenReloadInterval)
	errc := make(chan error, 3)
	go func() { errc <- a.server.ServeQUIC(ctx, a.quicLn) }()
	go func() { errc <- a.server.ServeUnix(ctx, a.unixLn) }()
	n := 2
	var srv *http.Server
	if a.httpLn != nil {
		var errLog *connguard.LogLimiter
		srv, errLog = newHTTPServer(a.httpHandler(), a.cfg.Listen.Limits, a.log)
		defer errLog.Close()
		n++
		go func() {
			if err := srv.Serve(a.httpLn); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
				return
			}
			errc <- nil
		}()
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
		n--
		cancel()
	}
	stopJobs() // their instances end while kerfd still serves them
	if srv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(sctx)
		scancel()
	}
	for ; n > 0; n-- {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	a.server.Wait()
	os.Remove(a.cfg.UnixPath())
	a.log.Info("kerfd stopped")
	return first
}

// reclaimLoop ends the sessions of leases the slicer reclaims for idling
// and then frees their slices, and takes back compute-share grants that
// were never reported.
func (a *Appliance) reclaimLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			a.shares.tick()
		case <-t.C:
			for _, r := range a.node.sl.Reclaim() {
				a.log.Info("reclaimed idle slices", "tenant", r.Lease.Tenant, "lease", r.Lease.ID, "idle", r.IdleFor.Round(time.Second))
				// Its holder learns that the lease ended; its sessions end
				// before its slices are free.
				go func() {
					a.server.CloseLease(string(r.Lease.ID))
					a.node.slices.Release(string(r.Lease.ID))
				}()
			}
		}
	}
}

// tokenReloadInterval is how often kerfd looks at the token file for
// changes made by another process (kerfd token revoke), so that a
// revocation ends live sessions within about this long, calls or not.
const tokenReloadInterval = time.Second

// reloadTokens reloads the token store every interval until ctx ends; the
// store's OnRevoke ends the sessions of tenants revoked in the file.
func reloadTokens(ctx context.Context, tokens *auth.TokenStore, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			tokens.Reload()
		}
	}
}

// firstToken issues a token for tenant "default" on the very first start,
// so a newcomer can run a program at once. Its bundle is the only copy.
func (a *Appliance) firstToken() error {
	path, err := firstBundle(a.cfg, a.tokens, a.fp, a.QUICAddr())
	if err != nil || path == "" {
		return err
	}
	a.log.Info("issued the first tenant token; keep its bundle safe", "tenant", "default", "bundle", path)
	return nil
}

// firstBundle issues the "default" tenant's token when the store is empty
// and returns its bundle's path ("" when tokens exist already).
func firstBundle(cfg Config, tokens *auth.TokenStore, fp transport.Fingerprint, quicAddr string) (string, error) {
	if len(tokens.List()) > 0 {
		return "", nil
	}
	path, err := issueBundle(cfg, tokens, fp, quicAddr, "default", 0, "")
	if err != nil {
		return "", fmt.Errorf("issuing the first tenant token: %w", err)
	}
	return path, nil
}

// Init prepares the state directory as first start does — TLS identity,
// token store, the first tenant's bundle — without serving. The image's
// first-boot unit runs it. It returns the first bundle's path, or "" when
// the appliance was initialised before.
func Init(cfg Config) (string, transport.Fingerprint, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return "", transport.Fingerprint{}, err
	}
	_, fp, err := transport.LoadOrCreateCert(cfg.StateDir)
	if err != nil {
		return "", fp, err
	}
	tokens, err := auth.OpenTokenStore(cfg.TokensPath())
	if err != nil {
		return "", fp, err
	}
	path, err := firstBundle(cfg, tokens, fp, cfg.Listen.QUIC)
	return path, fp, err
}

// InitAdmin makes the operator API's admin token at first start and
// returns it; kerfd must not be running. The API keeps only its hash; the
// operator's copy is AdminTokenPath (mode 0600, on the state partition).
func InitAdmin(cfg Config) (string, error) {
	tok, err := profiles.ResetAdminToken(apiConfig(cfg))
	if err != nil {
		return "", err
	}
	return tok, saveAdminToken(cfg, tok)
}

func saveAdminToken(cfg Config, tok string) error {
	return os.WriteFile(cfg.AdminTokenPath(), []byte(tok+"\n"), 0o600)
}

// IssueBundle issues a token for tenant and writes its bundle to out
// (default: <state>/bundles/<tenant>.json).
func (a *Appliance) IssueBundle(tenant string, memLimit uint64, out string) (string, error) {
	return issueBundle(a.cfg, a.tokens, a.fp, a.QUICAddr(), tenant, memLimit, out)
}

func issueBundle(cfg Config, tokens *auth.TokenStore, fp transport.Fingerprint, quicAddr, tenant string, memLimit uint64, out string) (string, error) {
	tok, err := tokens.Issue(tenant, memLimit)
	if err != nil {
		return "", err
	}
	return writeBundle(cfg, fp, quicAddr, tenant, tok, out)
}

// writeBundle writes tenant's bundle for tok to out (default:
// <state>/bundles/<tenant>.json).
func writeBundle(cfg Config, fp transport.Fingerprint, quicAddr, tenant, tok, out string) (string, error) {
	return saveBundle(cfg, reach(cfg, fp, quicAddr), tenant, tok, out)
}

// saveBundle writes b, how a tenant reaches kerfd, for tenant's token tok
// to out (default: <state>/bundles/<tenant>.json).
func saveBundle(cfg Config, b auth.Bundle, tenant, tok, out string) (string, error) {
	if out == "" {
		if err := os.MkdirAll(cfg.BundleDir(), 0o700); err != nil {
			return "", err
		}
		out = filepath.Join(cfg.BundleDir(), tenant+".json")
	}
	b.Tenant, b.Token = tenant, tok
	return out, auth.WriteBundle(out, b)
}

// reach is a bundle without tenant or token: how a tenant reaches kerfd.
func reach(cfg Config, fp transport.Fingerprint, quicAddr string) auth.Bundle {
	return auth.Bundle{QUIC: reachable(quicAddr), Socket: absPath(cfg.UnixPath()), Fingerprint: fp.String()}
}

// reachable turns a wildcard listen address into one a local client can
// dial; operators edit the bundle's host for remote tenants.
func reachable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
