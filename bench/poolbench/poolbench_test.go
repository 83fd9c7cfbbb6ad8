package poolbench

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The benchmark runs end to end on a short budget and reports every
// figure: latencies on both sides, placements under contention, and a
// placement on the members left after each was killed in turn, JetStream's
// meta leader first and another after. It asserts no speed.
func TestRunReportsEveryFigure(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four kerfd processes")
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bin+"/", "github.com/kerf-edge/kerf/cmd/kerfd").CombinedOutput(); err != nil {
		t.Fatalf("go build kerfd: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress strings.Builder
	r, err := Run(ctx, Options{Kerfd: filepath.Join(bin, "kerfd"), Dir: t.TempDir(), Placements: 5, Placers: 2, Contention: 500 * time.Millisecond, Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	t.Logf("%+v", r)
	if r.PoolP50Ms <= 0 || r.PoolP99Ms < r.PoolP50Ms || r.SingleP50Ms <= 0 || r.SingleP99Ms < r.SingleP50Ms || r.P99Ratio <= 0 {
		t.Errorf("latencies: pool %v / %v ms, alone %v / %v ms", r.PoolP50Ms, r.PoolP99Ms, r.SingleP50Ms, r.SingleP99Ms)
	}
	if r.SyncP50Ms <= 0 || r.SyncP99Ms < r.SyncP50Ms {
		t.Errorf("synced appends on the state disk: %v / %v ms", r.SyncP50Ms, r.SyncP99Ms)
	}
	if r.PoolPerSec <= 0 || r.SinglePerSec <= 0 || r.PoolErrors != 0 || r.SingleErrors != 0 {
		t.Errorf("under contention: %v/s in the pool (%d errors), %v/s alone (%d errors): %s", r.PoolPerSec, r.PoolErrors, r.SinglePerSec, r.SingleErrors, r.FirstError)
	}
	if len(r.Failovers) != 3 {
		t.Errorf("failovers: %+v, want one for each member", r.Failovers)
	}
	metaKills := 0
	for _, f := range r.Failovers {
		if f.Ms <= 0 || f.Ms > f.WaitMs || f.WaitMs > r.FailoverMs || f.GrantedOn == "" || f.GrantedOn == f.Killed || f.Refused > f.Attempts {
			t.Errorf("failover: %+v (longest %v ms)", f, r.FailoverMs)
		}
		if f.MetaLeader {
			metaKills++
			if f.ElectedMs <= 0 || f.WaitMs > r.MetaFailoverMs {
				t.Errorf("failover of the meta leader: %+v (longest %v ms)", f, r.MetaFailoverMs)
			}
		}
	}
	if metaKills < 1 || metaKills == len(r.Failovers) || !r.Failovers[0].MetaLeader {
		t.Errorf("failovers: %+v, want the meta leader killed first, and another member after", r.Failovers)
	}
	if len(r.Targets) != 3 {
		t.Errorf("targets: %+v", r.Targets)
	}
}
