package ptx

import (
	"encoding/binary"
	"math/bits"
	"strings"
)

// mbarrier: barriers in shared memory that threads arrive at and wait
// on in phases. The 64-bit object is opaque to programs; here it holds
// the arrivals each phase expects (bits 0-19), the arrivals still
// pending in the current phase (bits 20-39) and the phase's parity
// (bit 63). The state an arrive returns is the object as it was before
// the arrival, so a wait on it completes once the parity has changed.
//
// A wait that finds its phase incomplete yields the warp, so that the
// block's other warps run and arrive; a block whose warps all wait on
// phases that never complete runs until the watchdog ends it.

// mbarrier operations, in instr.mod
const (
	mbInit uint8 = iota
	mbInval
	mbArrive
	mbArriveDrop
	mbPending
)

const (
	mbCountMask   = 1<<20 - 1
	mbPendingShft = 20
	mbPhaseBit    = 1 << 63
)

// mbarDecode decodes the mbarrier operations of sm_80: init, inval,
// arrive, arrive_drop (with .noComplete), test_wait and try_wait (with
// .parity), pending_count.
func (x *instrDecoder) mbarDecode() error {
	o, in, ops := &x.o, &x.in, x.ops
	o.take("release", "acquire", "relaxed", "cta")
	in.space = spGeneric
	if o.take("shared", "shared::cta") {
		in.space = spShared
	}
	if t, ok := o.oneType(); !ok || t != tB64 {
		return x.bad()
	}
	var err error
	one := func() (uint16, error) { return x.constReg(1) }
	switch {
	case o.take("init"):
		if len(ops) != 2 {
			return x.bad()
		}
		in.op, in.mod = opMbar, mbInit
		in.b, err = x.src(ops[1], tU32)
	case o.take("inval"):
		if len(ops) != 1 {
			return x.bad()
		}
		in.op, in.mod = opMbar, mbInval
		in.b, err = one()
	case o.take("arrive"), o.take("arrive_drop"):
		in.op, in.mod = opMbar, mbArrive
		if strings.Contains(x.opc, "arrive_drop") {
			in.mod = mbArriveDrop
		}
		o.take("noComplete")
		if len(ops) != 2 && len(ops) != 3 {
			return x.bad()
		}
		if in.d, err = x.dst(ops[0].s); err != nil || ops[0].kind != roValue {
			return x.errf("%s: bad state destination", x.opc)
		}
		if len(ops) == 3 {
			in.b, err = x.src(ops[2], tU32)
		} else {
			in.b, err = one()
		}
		ops = ops[1:]
	case o.take("test_wait"), o.take("try_wait"):
		in.op = opMbarWait
		if o.take("parity") {
			in.mod = 1
		}
		if len(ops) != 3 && len(ops) != 4 {
			return x.bad()
		}
		if in.d, err = x.dst(ops[0].s); err != nil || ops[0].kind != roValue {
			return x.errf("%s: bad predicate destination", x.opc)
		}
		if len(ops) == 4 {
			if _, err = x.src(ops[3], tU32); err != nil {
				return err
			}
		}
		in.b, err = x.src(ops[2], tB64)
		ops = ops[1:]
	case o.take("pending_count"):
		if len(ops) != 2 {
			return x.bad()
		}
		in.op, in.mod = opMbar, mbPending
		if in.d, err = x.dst(ops[0].s); err != nil {
			return err
		}
		in.b, err = x.src(ops[1], tB64)
		return err
	default:
		return x.bad()
	}
	if err != nil {
		return err
	}
	in.a, in.off, err = x.addr(ops[0])
	return err
}

// mbarWord returns the barrier object lane l addresses.
func (w *worker) mbarWord(wp *warp, in *instr, l int) ([]byte, error) {
	return w.access(in, in.space, wp.r[in.a][l]+uint64(in.off), 8, wp.idx*32+l)
}

// mbar runs init, inval, arrive and pending_count for the lanes in mask,
// one lane after another.
func (w *worker) mbar(wp *warp, in *instr, mask uint32) error {
	r := wp.r
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		cnt := uint64(uint32(r[in.b][l]))
		if in.mod == mbPending {
			r[in.d][l] = r[in.b][l] >> mbPendingShft & mbCountMask
			continue
		}
		b, err := w.mbarWord(wp, in, l)
		if err != nil {
			return err
		}
		v := binary.LittleEndian.Uint64(b)
		switch in.mod {
		case mbInit:
			cnt &= mbCountMask
			v = cnt | cnt<<mbPendingShft
		case mbInval:
			v = 0
		case mbArrive, mbArriveDrop:
			r[in.d][l] = v
			expected, pending := v&mbCountMask, v>>mbPendingShft&mbCountMask
			if in.mod == mbArriveDrop {
				expected -= min(cnt, expected)
			}
			pending -= min(cnt, pending)
			phase := v & mbPhaseBit
			if pending == 0 {
				phase ^= mbPhaseBit
				pending = expected
			}
			v = phase | pending<<mbPendingShft | expected
		}
		binary.LittleEndian.PutUint64(b, v)
	}
	return nil
}

// mbarWait runs test_wait and try_wait for the lanes in mask and reports
// whether any lane found its phase incomplete.
func (w *worker) mbarWait(wp *warp, in *instr, mask uint32) (bool, error) {
	r := wp.r
	incomplete := false
	for m := mask; m != 0; m &= m - 1 {
		l := bits.TrailingZeros32(m)
		b, err := w.mbarWord(wp, in, l)
		if err != nil {
			return false, err
		}
		phase := binary.LittleEndian.Uint64(b) >> 63
		var done bool
		if in.mod == 1 {
			done = r[in.b][l]&1 != phase
		} else {
			done = r[in.b][l]>>63 != phase
		}
		r[in.d][l] = bool64(done)
		incomplete = incomplete || !done
	}
	return incomplete, nil
}
