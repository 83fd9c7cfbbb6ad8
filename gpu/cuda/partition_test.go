//go:build cgo

package cuda

// SM partitions against the fake driver (testdata/fakecuda.c), which has
// the green-context calls (unless built with FAKE_NO_GREEN) and appends
// the partitions asked for, stream creation, synchronisation and every
// launch, with its stream's SMs, to a log the tests read.

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

const (
	fakeLibEnv = "KERF_CUDA_FAKE_LIB"
	fakeLogEnv = "KERF_FAKE_LOG" // read by the fake driver
)

// TestFakeDriverSMPartitions runs each case in a child process, which
// loads one variant of the fake driver.
func TestFakeDriverSMPartitions(t *testing.T) {
	if os.Getenv(fakeDirEnv) != "" {
		t.Skip("in the child")
	}
	if _, err := os.Stat("/usr/bin/gcc"); err != nil {
		t.Skip("no gcc")
	}
	dir := t.TempDir()
	buildFake(t, dir, "hopper.so")
	buildFake(t, dir, "nogreen.so", "-DFAKE_NO_GREEN")
	buildFake(t, dir, "cuda122.so", "-DFAKE_NO_GREEN", "-DFAKE_NO_PARAMINFO", "-DFAKE_VERSION=12020")
	buildFake(t, dir, "ampere.so", "-DFAKE_CC_MAJOR=8")
	for _, tc := range []struct{ name, child, lib string }{
		{"resize at kernel boundary", "TestSMPartitionResizeChild", "hopper.so"},
		{"plan applied per slice", "TestSMPartitionPlanChild", "hopper.so"},
		{"configured time-slicing", "TestSMPartitionConfiguredOffChild", "hopper.so"},
		{"driver lacks the calls", "TestSMPartitionFallbackChild", "nogreen.so"},
		{"CUDA 12.2 driver", "TestSMPartitionFallbackChild", "cuda122.so"},
		{"pre-Hopper GPU", "TestSMPartitionFallbackChild", "ampere.so"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runChild(t, tc.child, dir, fakeLibEnv+"="+tc.lib, fakeLogEnv+"="+filepath.Join(t.TempDir(), "calls.log"))
		})
	}
}

// childBackend opens the backend over the case's fake driver.
func childBackend(t *testing.T, timeSlicing bool) *Backend {
	t.Helper()
	dir, lib := os.Getenv(fakeDirEnv), os.Getenv(fakeLibEnv)
	if dir == "" || lib == "" {
		t.Skip("run by TestFakeDriverSMPartitions")
	}
	b, err := New(Config{Library: filepath.Join(dir, lib), TimeSlicing: timeSlicing})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeCalls returns the fake driver's log lines from line from on.
func fakeCalls(t *testing.T, from int) []string {
	t.Helper()
	b, err := os.ReadFile(os.Getenv(fakeLogEnv))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) == 1 && lines[0] == "" {
		lines = nil
	}
	return lines[min(from, len(lines)):]
}

var launchLine = regexp.MustCompile(`^launch stream=\S+ ctx=\S+ first=(\d+) sms=(\d+)$`)

// launchSMs launches the fake's vadd on s and returns the first SM and
// SM count the fake ran it on.
func launchSMs(t *testing.T, c gpu.Context, f gpu.Function, s gpu.Stream) (first, sms int) {
	t.Helper()
	from := len(fakeCalls(t, 0))
	if err := c.Launch(f, fakeLaunch, make([]byte, 28), s); err != nil {
		t.Fatal(err)
	}
	for _, l := range fakeCalls(t, from) {
		if m := launchLine.FindStringSubmatch(l); m != nil {
			first, _ = strconv.Atoi(m[1])
			sms, _ = strconv.Atoi(m[2])
			return first, sms
		}
	}
	t.Fatalf("no launch logged: %q", fakeCalls(t, from))
	return 0, 0
}

// vadd loads the fake's module on c and returns its kernel.
func vadd(t *testing.T, c gpu.Context) gpu.Function {
	t.Helper()
	m, err := c.ModuleLoad(fakeVaddPTX)
	if err != nil {
		t.Fatal(err)
	}
	f, err := m.Function("vadd")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSMPartitionResizeChild(t *testing.T) {
	b := childBackend(t, false)
	m := b.ComputeMode(0)
	// 132 SMs in groups of 8: 16 groups, 4 SMs in no group.
	if !m.Partitioned || m.Groups != 16 || m.GroupSMs != 8 || m.SMs != 132 || m.Name() != "sm-partitions" {
		t.Fatalf("compute mode %+v, want 16 groups of 8 of 132 SMs", m)
	}
	if err := b.SetSMPartition(0, SMPartition{First: 5, Groups: 11}); err != nil {
		t.Fatal(err)
	}
	ctx, err := b.Open(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	c := ctx.(*Context)
	if p, sms, ok := c.Partition(); !ok || p != (SMPartition{First: 5, Groups: 11}) || sms != 88 {
		t.Fatalf("partition %v %d %v, want groups [5,16), 88 SMs", p, sms, ok)
	}
	f := vadd(t, c)
	s, err := c.StreamCreate(abi.StreamNonBlocking, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.MemAlloc(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []gpu.Stream{nil, s} {
		if first, sms := launchSMs(t, c, f, st); first != 40 || sms != 88 {
			t.Fatalf("launch on stream %v ran on SMs from %d, %d of them; want 40, 88", st, first, sms)
		}
	}

	// A re-slice: nothing moves until the next kernel.
	from := len(fakeCalls(t, 0))
	if err := b.SetSMPartition(0, SMPartition{First: 0, Groups: 4}); err != nil {
		t.Fatal(err)
	}
	if calls := fakeCalls(t, from); len(calls) != 0 {
		t.Fatalf("the driver was called before the next kernel: %q", calls)
	}
	if _, _, err := c.AddressRange(p); err != nil {
		t.Fatalf("memory made before the move: %v", err)
	}
	if first, sms := launchSMs(t, c, f, s); first != 0 || sms != 32 {
		t.Fatalf("after the re-slice, the stream's launch ran on SMs from %d, %d of them; want 0, 32", first, sms)
	}
	// The move waited for the work queued before it, made the new green
	// context, moved the stream there, and only then let go of the old.
	order := []string{"sync ", "green create ", "stream create ", "stream destroy ", "green destroy ", "launch "}
	calls := fakeCalls(t, from)
	i := 0
	for _, l := range calls {
		if i < len(order) && strings.HasPrefix(l, order[i]) {
			i++
		}
	}
	if i != len(order) {
		t.Fatalf("the move's calls %q are not in the order %q", calls, order)
	}
	if first, sms := launchSMs(t, c, f, nil); first != 0 || sms != 32 {
		t.Fatalf("the default stream's launch ran on SMs from %d, %d of them; want 0, 32", first, sms)
	}
	// Memory and modules stayed: they are the primary context's.
	if _, _, err := c.AddressRange(p); err != nil {
		t.Fatalf("memory after the move: %v", err)
	}
	if err := s.Synchronize(); err != nil {
		t.Fatal(err)
	}
	// The same partition again moves nothing.
	from = len(fakeCalls(t, 0))
	if err := b.SetSMPartition(0, SMPartition{First: 0, Groups: 4}); err != nil {
		t.Fatal(err)
	}
	launchSMs(t, c, f, s)
	for _, l := range fakeCalls(t, from) {
		if strings.HasPrefix(l, "green ") {
			t.Fatalf("an unchanged partition was recreated: %q", fakeCalls(t, from))
		}
	}
	if err := b.SetSMPartition(0, SMPartition{First: 10, Groups: 7}); err == nil {
		t.Fatal("a partition past the last group was accepted")
	}
	// A move the driver refuses leaves the kernels where they were.
	os.Setenv("KERF_FAKE_REFUSE_GREEN", "1")
	if err := b.SetSMPartition(0, SMPartition{First: 8, Groups: 8}); err != nil {
		t.Fatal(err)
	}
	if first, sms := launchSMs(t, c, f, s); first != 0 || sms != 32 {
		t.Fatalf("after a refused move the launch ran on SMs from %d, %d of them; want 0, 32", first, sms)
	}
	if err := c.MoveError(); err == nil || !strings.Contains(err.Error(), "CUDA_ERROR_OUT_OF_MEMORY") {
		t.Fatalf("MoveError after a refused move: %v", err)
	}
	os.Unsetenv("KERF_FAKE_REFUSE_GREEN")
	if p, sms, _ := c.Partition(); p != (SMPartition{First: 0, Groups: 4}) || sms != 32 {
		t.Fatalf("after a refused move the partition is %v (%d SMs)", p, sms)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if calls := fakeCalls(t, 0); !strings.HasPrefix(calls[len(calls)-1], "green destroy ") {
		t.Fatalf("Close did not destroy the green context: %q", calls[len(calls)-1])
	}
}

// TestSMPartitionPlanChild gives three tenants the partitions a 20/30/50
// plan gives them, and checks that their kernels run on disjoint SMs.
func TestSMPartitionPlanChild(t *testing.T) {
	b := childBackend(t, false)
	plan, err := PlanSMPartitions(b.ComputeMode(0).Groups, []float64{0.2, 0.3, 0.5})
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	for i, p := range plan {
		if err := b.SetSMPartition(0, p); err != nil {
			t.Fatal(err)
		}
		c, err := b.Open(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		first, sms := launchSMs(t, c, vadd(t, c), nil)
		if first != next || sms != p.SMs(8) {
			t.Errorf("tenant %d ran on SMs from %d, %d of them; want %d, %d", i, first, sms, next, p.SMs(8))
		}
		next = first + sms
		defer c.Close()
	}
	if next > 132 {
		t.Errorf("partitions end at SM %d of 132", next)
	}
}

func TestSMPartitionConfiguredOffChild(t *testing.T) {
	b := childBackend(t, true)
	checkTimeSliced(t, b, "configured")
}

func TestSMPartitionFallbackChild(t *testing.T) {
	b := childBackend(t, false)
	want := map[string]string{
		"nogreen.so": "lacks the green-context entry points",
		"cuda122.so": "CUDA 12.2",
		"ampere.so":  "predates Hopper",
	}[os.Getenv(fakeLibEnv)]
	checkTimeSliced(t, b, want)
}

// checkTimeSliced checks that b time-slices device 0 for the reason
// why, and that its contexts run on the whole GPU.
func checkTimeSliced(t *testing.T, b *Backend, why string) {
	t.Helper()
	m := b.ComputeMode(0)
	if m.Partitioned || m.Name() != "time-slicing" || !strings.Contains(m.Reason, why) {
		t.Fatalf("compute mode %+v, want time-slicing because %q", m, why)
	}
	if err := b.SetSMPartition(0, SMPartition{First: 0, Groups: 4}); err == nil || !strings.Contains(err.Error(), why) {
		t.Fatalf("SetSMPartition on a time-sliced device: %v", err)
	}
	c, err := b.Open(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, ok := c.(*Context).Partition(); ok {
		t.Fatal("a time-sliced device's context is partitioned")
	}
	if _, sms := launchSMs(t, c, vadd(t, c), nil); sms != 0 {
		t.Fatalf("a time-sliced context's launch ran in a green context of %d SMs", sms)
	}
	for _, l := range fakeCalls(t, 0) {
		if strings.HasPrefix(l, "green ") {
			t.Fatalf("green context made on a time-sliced device: %q", l)
		}
	}
}
