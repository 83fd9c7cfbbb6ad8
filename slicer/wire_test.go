package slicer

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/clock"
)

func TestMsgJSON(t *testing.T) {
	for _, tc := range []struct {
		m    Msg
		want string
	}{
		{Msg{Op: OpSetMemLimit, Seq: 7, Slice: "g0.s3", Bytes: 2 << 30}, `{"op":"setMemLimit","seq":7,"slice":"g0.s3","bytes":2147483648}`},
		{Msg{Op: OpAcquire, Estimate: 500 * time.Microsecond}, `{"op":"acquire","estimateNs":500000}`},
		{Msg{Op: OpUsed, GrantID: 41, Used: 2210 * time.Microsecond}, `{"op":"used","grantId":41,"usedNs":2210000}`},
		{Msg{Op: OpAck, Seq: 7, Err: "out of memory"}, `{"op":"ack","seq":7,"err":"out of memory"}`},
	} {
		b, err := json.Marshal(tc.m)
		if err != nil || string(b) != tc.want {
			t.Fatalf("%s, want %s (%v)", b, tc.want, err)
		}
		var back Msg
		if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, tc.m) {
			t.Fatalf("round trip %+v", back)
		}
	}
}

// TestControlFuncs wires a Slicer to an Arbiter the way kerfd would:
// shares go to the GPU's arbiter, memory limits to the worker.
func TestControlFuncs(t *testing.T) {
	arb := NewArbiter(ArbiterConfig{Clock: clock.NewFake(time.Time{})})
	limits := map[SliceID]uint64{}
	ctl := ControlFuncs{
		MemLimit: func(id SliceID, b uint64) error { limits[id] = b; return nil },
		Share:    func(id SliceID, sh float64) error { arb.SetShare(string(id), sh); return nil },
	}
	s, _ := oneGPU(t, ctl)
	l := must[Lease](t)(s.TryAllocate(Request{Tenant: "a", N: 1, Fraction: 0.2}))
	arb.SetShare(string(l.Slices[0]), 0.2) // kerfd registers a slice when its worker starts
	must[*Plan](t)(s.ApplyProfile("mixed-2x25-5x10", ApplyOptions{}))
	if st := arb.Stats(); len(st) != 1 || st[0].Share != 0.25 || limits[l.Slices[0]] != 2560*MiB {
		t.Fatalf("arbiter %+v limits %v", st, limits)
	}
	var none ControlFuncs
	if none.SetMemLimit("x", 1) != nil || none.SetShare("x", 1) != nil {
		t.Fatal("empty ControlFuncs failed")
	}
	boom := ControlFuncs{MemLimit: func(SliceID, uint64) error { return errors.New("boom") }}
	if boom.SetMemLimit("x", 1) == nil {
		t.Fatal("error lost")
	}
}
