//go:build cgo

package appliance

import (
	"testing"

	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/slicer/discover"
	"github.com/kerf-edge/kerf/slicer/discover/discovertest"
)

// On real GPUs the operator's GPU view carries NVML's samples (here from
// go-nvml's 8×A100 mock).
func TestGPUsCarryNVMLSamples(t *testing.T) {
	nv, err := discover.OpenWith(discovertest.DGX())
	if err != nil {
		t.Fatal(err)
	}
	defer nv.Close()
	n := &node{devices: make([]gpu.DeviceInfo, 8), samples: nv.Sample}
	gpus := n.GPUs()
	g := gpus[2]
	if !g.Sampled || g.UtilizationRatio != 0.2 || g.TemperatureCelsius != 42 || g.PowerWatts != 62 {
		t.Fatalf("gpu 2: %+v", g)
	}
	n.samples = nil
	if n.GPUs()[2].Sampled {
		t.Fatal("sampled without NVML")
	}
}
