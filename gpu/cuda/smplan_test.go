package cuda

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestPlanSMPartitions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		groups int
		shares []float64
		want   []int // groups per slice, partitions contiguous from 0
	}{
		{"none", 16, nil, nil},
		{"whole GPU", 16, []float64{1}, []int{16}},
		{"halves", 16, []float64{0.5, 0.5}, []int{8, 8}},
		{"30/70 on an H100's 16 groups", 16, []float64{0.3, 0.7}, []int{5, 11}},
		{"70/30 order kept", 16, []float64{0.7, 0.3}, []int{11, 5}},
		{"20/30/50", 16, []float64{0.2, 0.3, 0.5}, []int{3, 5, 8}},
		{"quarters", 16, []float64{0.25, 0.25, 0.25, 0.25}, []int{4, 4, 4, 4}},
		{"thirds do not divide: the tie goes to the first", 16, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}, []int{6, 5, 5}},
		{"thirds of 17 groups", 17, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}, []int{6, 6, 5}},
		{"shares under one leave groups free", 16, []float64{0.25, 0.25}, []int{4, 4}},
		{"a half alone", 16, []float64{0.5}, []int{8}},
		{"tiny share gets the minimum", 16, []float64{0.01}, []int{1}},
		{"minimum taken from the largest", 16, []float64{0.02, 0.98}, []int{1, 15}},
		{"minimum taken from free groups first", 16, []float64{0.01, 0.5}, []int{1, 8}},
		{"several minimums", 4, []float64{0.05, 0.05, 0.9}, []int{1, 1, 2}},
		{"as many slices as groups", 4, []float64{0.1, 0.1, 0.1, 0.7}, []int{1, 1, 1, 1}},
		{"rounding never exceeds the groups", 16, []float64{0.6, 0.4}, []int{10, 6}},
		{"float sum over one by rounding", 10, []float64{0.1, 0.2, 0.7}, []int{1, 2, 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PlanSMPartitions(tc.groups, tc.shares)
			if err != nil {
				t.Fatal(err)
			}
			var counts []int
			next, total := 0, 0
			for i, p := range got {
				if p.First != next {
					t.Errorf("slice %d starts at group %d, want %d (contiguous)", i, p.First, next)
				}
				next = p.End()
				total += p.Groups
				counts = append(counts, p.Groups)
			}
			if !slices.Equal(counts, tc.want) {
				t.Errorf("groups %v, want %v", counts, tc.want)
			}
			if total > tc.groups {
				t.Errorf("%d groups assigned, the GPU has %d", total, tc.groups)
			}
		})
	}
}

func TestPlanSMPartitionsRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		groups int
		shares []float64
		why    string
	}{
		{"more slices than groups", 2, []float64{0.3, 0.3, 0.4}, "every slice needs a group"},
		{"no groups", 0, []float64{1}, "every slice needs a group"},
		{"shares over one", 16, []float64{0.6, 0.6}, "over 1"},
		{"zero share", 16, []float64{0}, "not in (0, 1]"},
		{"negative share", 16, []float64{-0.5}, "not in (0, 1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := PlanSMPartitions(tc.groups, tc.shares)
			if !errors.Is(err, ErrNoPartitionPlan) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("got %v, %v; want ErrNoPartitionPlan saying %q", p, err, tc.why)
			}
		})
	}
}

func TestSMGroupSize(t *testing.T) {
	for _, tc := range []struct{ major, minor, want int }{
		{6, 1, 1}, {7, 0, 2}, {7, 5, 2}, {8, 0, 4}, {8, 6, 4}, {8, 9, 4}, {9, 0, 8}, {10, 0, 8}, {12, 0, 8},
	} {
		if got := SMGroupSize(tc.major, tc.minor); got != tc.want {
			t.Errorf("SMGroupSize(%d.%d) = %d, want %d", tc.major, tc.minor, got, tc.want)
		}
	}
}

func TestPartitionSupport(t *testing.T) {
	for _, tc := range []struct {
		name      string
		prefer    bool
		driver    int
		cc        int
		haveCalls bool
		ok        bool
		why       string
	}{
		{"Hopper, CUDA 12.4", false, 12040, 9, true, true, ""},
		{"Blackwell, CUDA 12.8", false, 12080, 10, true, true, ""},
		{"configured time-slicing", true, 12040, 9, true, false, "configured"},
		{"CUDA 12.2 driver", false, 12020, 9, false, false, "CUDA 12.2"},
		{"entry points missing", false, 12040, 9, false, false, "lacks the green-context entry points"},
		{"Ampere", false, 12040, 8, true, false, "predates Hopper"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := partitionSupport(tc.prefer, tc.driver, tc.cc, tc.haveCalls)
			if ok != tc.ok || !strings.Contains(why, tc.why) || (tc.ok && why != "") {
				t.Errorf("got %v %q, want %v %q", ok, why, tc.ok, tc.why)
			}
		})
	}
}
