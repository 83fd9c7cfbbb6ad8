package cuda

import (
	"errors"
	"fmt"
	"math"
)

// Compute shares become SM partitions where the driver and GPU support
// green contexts; everywhere else they are enforced by time (the share
// gate). This file holds the policy, free of the driver: when partitions
// are used, and how a GPU's SMs are divided among its slices.
//
// The driver splits a GPU's SMs into groups of the size the hardware
// demands (8 SMs on compute capability 9.0 and newer); SMs that do not
// fill a group are used by no partition. A slice's partition is a run of
// whole groups. Groups are dealt in proportion to the shares:
//   - every slice gets at least one group;
//   - a slice gets the whole groups its share covers (share × groups,
//     rounded down), and the groups left over go, one each, to the slices
//     with the largest fractions left over (the earlier slice on a tie);
//   - groups beyond the sum of the shares (rounded down) stay unassigned,
//     for slices to come: a partition is a ceiling, never borrowed from;
//   - the minimums take unassigned groups first; only when there are none
//     do they come out of the slices given most beyond their share; with
//     more slices than groups there is no plan, and the GPU stays
//     time-sliced.
// Partitions follow the slices' order, each starting where the one
// before ends, so that every worker, knowing its own run of groups,
// takes SMs no other slice has.

// MinPartitionDriver is the first driver with green contexts (CUDA 12.4).
const MinPartitionDriver = 12040

// MinPartitionCC is the oldest compute capability (major) whose SMs Kerf
// partitions: Hopper. Older GPUs have green contexts too, but Kerf keeps
// time-slicing there.
const MinPartitionCC = 9

// ComputeMode says how a device's compute shares are enforced.
type ComputeMode struct {
	// Partitioned: by SM partitions (green contexts), each slice's kernels
	// confined to SMs of their own; otherwise by time (the share gate).
	Partitioned bool
	// Why time-slicing, when not partitioned.
	Reason string
	// The driver's split of the device's SMs: Groups groups of GroupSMs
	// SMs, of SMs in all (partitioned devices only).
	Groups, GroupSMs, SMs int
}

// Name is "sm-partitions" or "time-slicing".
func (m ComputeMode) Name() string {
	if m.Partitioned {
		return "sm-partitions"
	}
	return "time-slicing"
}

// SMPartition is a slice's run of SM groups: Groups groups from group
// First, in the order the driver's split returns them.
type SMPartition struct {
	First  int
	Groups int
}

// SMs is the partition's SM count with groups of groupSMs SMs.
func (p SMPartition) SMs(groupSMs int) int { return p.Groups * groupSMs }

// End is the group after the partition's last.
func (p SMPartition) End() int { return p.First + p.Groups }

func (p SMPartition) String() string {
	return fmt.Sprintf("SM groups [%d,%d)", p.First, p.End())
}

// ErrNoPartitionPlan is returned when a GPU's slices cannot each have
// SMs of their own; their shares are then enforced by time.
var ErrNoPartitionPlan = errors.New("no SM partition plan")

// shareSlack absorbs float rounding in shares that sum to one.
const shareSlack = 1e-9

// PlanSMPartitions divides groups SM groups among slices with compute
// shares shares (each in (0, 1], summing to at most 1), in order.
func PlanSMPartitions(groups int, shares []float64) ([]SMPartition, error) {
	if len(shares) == 0 {
		return nil, nil
	}
	sum := 0.0
	for i, s := range shares {
		if !(s > 0 && s <= 1) {
			return nil, fmt.Errorf("%w: slice %d has share %v, not in (0, 1]", ErrNoPartitionPlan, i, s)
		}
		sum += s
	}
	if sum > 1+shareSlack {
		return nil, fmt.Errorf("%w: shares sum to %.4f, over 1", ErrNoPartitionPlan, sum)
	}
	if len(shares) > groups {
		return nil, fmt.Errorf("%w: %d slices, %d SM groups: every slice needs a group", ErrNoPartitionPlan, len(shares), groups)
	}
	ideal := make([]float64, len(shares))
	got := make([]int, len(shares))
	total := 0
	for i, s := range shares {
		ideal[i] = s * float64(groups)
		got[i] = max(1, int(math.Floor(ideal[i]+shareSlack)))
		total += got[i]
	}
	target := min(groups, max(total, int(math.Floor(sum*float64(groups)+shareSlack))))
	// Minimums taken beyond the target come from the slices most over
	// their share.
	for total > target {
		i := pick(len(got), func(i int) (float64, bool) { return float64(got[i]) - ideal[i], got[i] > 1 })
		got[i]--
		total--
	}
	// Groups left go to the largest fractions left over.
	for total < target {
		i := pick(len(got), func(i int) (float64, bool) { return ideal[i] - float64(got[i]), true })
		got[i]++
		total++
	}
	out := make([]SMPartition, len(shares))
	next := 0
	for i, n := range got {
		out[i] = SMPartition{First: next, Groups: n}
		next += n
	}
	return out, nil
}

// pick returns the index with the largest key among those allowed, the
// lowest index on a tie. One index is always allowed when pick is called.
func pick(n int, key func(int) (float64, bool)) int {
	best, bestKey := -1, 0.0
	for i := range n {
		k, ok := key(i)
		if ok && (best < 0 || k > bestKey+shareSlack) {
			best, bestKey = i, k
		}
	}
	return best
}

// SMGroupSize is the SM count a partition is a multiple of on compute
// capability major.minor, as NVIDIA's green-context documentation gives
// it (the driver's own split has the last word: the backend uses the
// group size its split returns).
func SMGroupSize(major, minor int) int {
	switch {
	case major >= 9:
		return 8
	case major == 8:
		return 4
	case major == 7:
		return 2
	default:
		return 1
	}
}

// partitionSupport decides whether a device's compute shares become SM
// partitions, and says why not when they do not.
func partitionSupport(preferTimeSlicing bool, driver, ccMajor int, haveCalls bool) (bool, string) {
	switch {
	case preferTimeSlicing:
		return false, "time-slicing is configured (gpu.cuda.timeSlicing)"
	case driver < MinPartitionDriver:
		return false, fmt.Sprintf("the driver supports CUDA %s; green contexts need %s", versionString(driver), versionString(MinPartitionDriver))
	case !haveCalls:
		return false, "the driver lacks the green-context entry points"
	case ccMajor < MinPartitionCC:
		return false, fmt.Sprintf("compute capability %d.x predates Hopper (%d.0)", ccMajor, MinPartitionCC)
	}
	return true, ""
}
