package slicer_test

import (
	"fmt"

	"github.com/kerf-edge/kerf/slicer"
)

func Example() {
	s, err := slicer.New(slicer.Config{
		GPUs: []slicer.GPU{
			{Index: 0, UUID: "GPU-0", Model: "NVIDIA A100", Memory: 40 << 30},
			{Index: 1, UUID: "GPU-1", Model: "NVIDIA A100", Memory: 40 << 30},
		},
		Reserve:       slicer.DefaultReserve,
		Profile:       "uniform-20",
		DefaultPolicy: slicer.Policy{MaxGPUs: 2.5},
	})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	l, err := s.TryAllocate(slicer.Request{Tenant: "alice", N: 2, Fraction: 0.05})
	fmt.Println(l.ID, l.GPUs, err)

	plan, _ := s.Plan("mixed-2x25-5x10", slicer.ApplyOptions{})
	done, err := s.Apply(plan, slicer.ApplyOptions{})
	fmt.Println(len(done.Steps), len(done.Pending), err)
	fmt.Println(s.Status().Profile)
	// Output:
	// l1 [0 1] <nil>
	// 52 0 <nil>
	// mixed-2x25-5x10
}
