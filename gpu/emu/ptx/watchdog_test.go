package ptx

import (
	"strings"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
)

const watchdogPTX = `
.version 6.0
.target sm_70
.address_size 64

.visible .entry empty()
{
	ret;
}

.visible .entry spin()
{
$L_top:
	bra.uni 	$L_top;
}
`

func watchdogKernel(t *testing.T, name string) *Kernel {
	t.Helper()
	m, err := Load([]byte(watchdogPTX))
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.Kernel(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// hugeGrid is the largest grid a launch may have: more blocks than the
// interpreter could run in a lifetime.
var hugeGrid = [3]uint32{1<<31 - 1, 65535, 65535}

// runWithin runs l and fails the test if it has not returned within a
// minute: a launch the watchdog misses runs for good.
func runWithin(t *testing.T, k *Kernel, l *Launch) (Stats, error) {
	t.Helper()
	type result struct {
		st  Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := k.RunStats(l)
		done <- result{st, err}
	}()
	select {
	case r := <-done:
		return r.st, r.err
	case <-time.After(time.Minute):
		t.Fatal("the launch was never stopped")
		return Stats{}, nil
	}
}

func TestGridBudget(t *testing.T) {
	const budget = 1 << 20
	for _, tc := range []struct {
		name, kernel string
		grid         [3]uint32
		want         string
	}{
		// Each block is within any per-block bound; only the grid's
		// total catches them.
		{"EmptyBlocks", "empty", hugeGrid, "grid exceeded"},
		// One block that never ends, with no per-block bound.
		{"EndlessBlock", "spin", [3]uint32{1, 1, 1}, "grid exceeded"},
		{"EndlessBlocks", "spin", [3]uint32{64, 1, 1}, "grid exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := watchdogKernel(t, tc.kernel)
			l := launch(k, newTestMem(), tc.grid, [3]uint32{32, 1, 1}, 0, nil, 4)
			l.MaxGridInstructions = budget
			st, err := runWithin(t, k, l)
			wantCode(t, err, abi.ErrLaunchTimeout)
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			// Workers stop within a check interval or a block of the budget.
			if limit := uint64(budget + 4*(checkEvery+BlockCharge)); st.WarpInstructions > limit {
				t.Fatalf("ran %d warp-instructions past a budget of %d", st.WarpInstructions, budget)
			}
		})
	}
}

func TestGridBudgetLeavesSmallGridsAlone(t *testing.T) {
	k := watchdogKernel(t, "empty")
	l := launch(k, newTestMem(), [3]uint32{1000, 1, 1}, [3]uint32{32, 1, 1}, 0, nil, 4)
	l.MaxGridInstructions = 1000 * BlockCharge
	if st, err := runWithin(t, k, l); err != nil || st.Blocks != 1000 {
		t.Fatalf("a grid within its budget: %d blocks, %v", st.Blocks, err)
	}
}

func TestStopEndsLaunch(t *testing.T) {
	for _, tc := range []struct {
		name, kernel string
		grid         [3]uint32
	}{
		{"BetweenBlocks", "empty", hugeGrid},
		{"InsideBlock", "spin", [3]uint32{4, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := watchdogKernel(t, tc.kernel)
			stop := make(chan struct{})
			l := launch(k, newTestMem(), tc.grid, [3]uint32{64, 1, 1}, 0, nil, 2)
			l.Stop = stop
			close(stop)
			_, err := runWithin(t, k, l)
			wantCode(t, err, abi.ErrLaunchFailed)
			if !strings.Contains(err.Error(), "stopped") {
				t.Fatalf("error %q does not say the launch was stopped", err)
			}
		})
	}
}

// A stop that comes while blocks run ends the launch too.
func TestStopWhileRunning(t *testing.T) {
	k := watchdogKernel(t, "spin")
	stop := make(chan struct{})
	l := launch(k, newTestMem(), [3]uint32{4, 1, 1}, [3]uint32{64, 1, 1}, 0, nil, 2)
	l.Stop = stop
	done := make(chan error, 1)
	go func() { done <- k.Run(l) }()
	close(stop)
	select {
	case err := <-done:
		wantCode(t, err, abi.ErrLaunchFailed)
	case <-time.After(time.Minute):
		t.Fatal("the launch did not stop")
	}
}
