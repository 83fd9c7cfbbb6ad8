package ptx

import (
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu/emu/kernels"
)

func TestIllegalAddress(t *testing.T) {
	for _, workers := range []int{1, 4} {
		mem := newTestMem()
		n := 1000
		p, q := mem.alloc(4*n), mem.alloc(4*n)
		k := kernel(t, "oob", "oob_write")
		err := k.Run(launch(k, mem, [3]uint32{ceilDiv(n, 128), 1, 1}, [3]uint32{128, 1, 1}, 0, packParams(t, k, p, n), workers))
		wantCode(t, err, abi.ErrIllegalAddress)
		k = kernel(t, "oob", "oob_read")
		err = k.Run(launch(k, mem, [3]uint32{ceilDiv(n, 128), 1, 1}, [3]uint32{128, 1, 1}, 0, packParams(t, k, p, q, n), workers))
		wantCode(t, err, abi.ErrIllegalAddress)
	}
	// a store just past the end of an allocation is caught too
	mem := newTestMem()
	a, b := mem.alloc(4*32), mem.alloc(4*33)
	k := kernel(t, "vadd", "vadd")
	err := k.Run(launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{64, 1, 1}, 0, packParams(t, k, b, b, a, 33), 1))
	wantCode(t, err, abi.ErrIllegalAddress)
}

func TestLaunchErrors(t *testing.T) {
	mem := newTestMem()
	k := kernel(t, "vadd", "vadd")
	err := k.Run(launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{32, 1, 1}, 0, make([]byte, 12), 1))
	wantCode(t, err, abi.ErrInvalidValue)
	err = k.Run(launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{2048, 1, 1}, 0, make([]byte, 28), 1))
	wantCode(t, err, abi.ErrInvalidValue)
	err = k.Run(launch(k, mem, [3]uint32{0, 1, 1}, [3]uint32{32, 1, 1}, 0, make([]byte, 28), 1))
	wantCode(t, err, abi.ErrInvalidValue)
	// stencil needs its globals
	k = kernel(t, "stencil", "stencil5")
	err = k.Run(launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{32, 1, 1}, 0, make([]byte, 24), 1))
	wantCode(t, err, abi.ErrInvalidValue)
	// dynamic shared memory is bounds checked
	k = kernel(t, "reduce", "reduce_sum")
	in, out := mem.alloc(4*64), mem.alloc(4)
	err = k.Run(launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{64, 1, 1}, 16, packParams(t, k, in, out, uint32(64)), 1))
	wantCode(t, err, abi.ErrIllegalAddress)
	m, _ := Load(kernels.PTX("vadd"))
	if _, err := m.Kernel("nope"); abi.ResultOf(err) != abi.ErrNotFound {
		t.Fatalf("Kernel(nope): %v", err)
	}
	if got := m.Kernels(); len(got) != 2 || got[0] != "saxpy" || got[1] != "vadd" {
		t.Fatalf("Kernels() = %v", got)
	}
}

const tinyPTX = `
.version 6.0
.target sm_70
.address_size 64

.visible .entry k(
	.param .u64 k_param_0
)
{
	.reg .b32 	%r<4>;
	.reg .f32 	%f<4>;
	.reg .b64 	%rd<4>;
	ld.param.u64 	%rd1, [k_param_0];
	mov.u32 	%r1, %tid.x;
	INSN
	ret;
}
`

func TestUnsupported(t *testing.T) {
	for _, c := range []struct{ insn, want string }{
		{"tex.grad.cube.v4.f32.f32 {%f1, %f2, %f3, %f3}, [%rd1, {%f1, %f2, %f3, %f3}], {%f1, %f2, %f3, %f3}, {%f1, %f2, %f3, %f3};", "tex.grad.cube.v4.f32.f32"},
		{"tex.level.2d.v4.f32.s32 {%f1, %f2, %f3, %f3}, [%rd1, {%r1, %r2}], %f3;", "tex.level.2d.v4.f32.s32"},
		{"sust.p.1d.b32.trap [%rd1, {%r1}], {%r1};", "sust.p.1d.b32.trap"},
		{"add.f16x2 %r1, %r1;", "add.f16x2"},
		{"frobnicate.b32 %r1, %r1;", "frobnicate.b32"},
		{"mbarrier.arrive.expect_tx.shared.b64 %rd2, [%rd1], %r1;", "mbarrier.arrive.expect_tx.shared.b64"},
		{"add.rz.ftz.sat.f32 %f1, %f1, %f1;", "add.rz.ftz.sat.f32"},
		{"call.uni foo, (%r1);", "call.uni"},
		{"mma.sync.aligned.m8n8k4.row.col.f32.f16.f16.f32 {%f1,%f2,%f3,%f3,%f1,%f2,%f3,%f3}, {%r1,%r2}, {%r1,%r2}, {%f1,%f2,%f3,%f3,%f1,%f2,%f3,%f3};", "mma.sync.aligned.m8n8k4.row.col.f32.f16.f16.f32"},
		{"wmma.load.a.sync.aligned.row.m32n8k16.global.f16 {%r1,%r1,%r1,%r1,%r1,%r1,%r1,%r1}, [%rd1], %r1;", "wmma.load.a.sync.aligned.row.m32n8k16.global.f16"},
		{"mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%r1,%r1,%r1,%r1}, {%r1,%r1,%r1,%r1}, {%r1,%r1}, {%r1,%r1,%r1,%r1};", "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32"},
		{"ldmatrix.sync.aligned.m8n8.x4.shared.b8 {%r1,%r1,%r1,%r1}, [%r1];", "ldmatrix.sync.aligned.m8n8.x4.shared.b8"},
	} {
		src := strings.Replace(tinyPTX, "INSN", c.insn, 1)
		_, err := Load([]byte(src))
		if abi.ResultOf(err) != abi.ErrInvalidPTX || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "line 15") {
			t.Errorf("%s: got %v, want ErrInvalidPTX naming %q at line 15", c.insn, err, c.want)
		}
	}
	// a supported one loads
	if _, err := Load([]byte(strings.Replace(tinyPTX, "INSN", "add.s32 %r2, %r1, 7;", 1))); err != nil {
		t.Fatal(err)
	}
}

// Loop hints, as nvcc writes them before a loop it must not unroll, are
// skipped; a string must end on its line.
func TestPragma(t *testing.T) {
	if _, err := Load([]byte(strings.Replace(tinyPTX, "INSN", `.pragma "nounroll";`, 1))); err != nil {
		t.Fatal(err)
	}
	_, err := Load([]byte(strings.Replace(tinyPTX, "INSN", ".pragma \"nounroll;\n", 1)))
	if abi.ResultOf(err) != abi.ErrInvalidPTX || !strings.Contains(err.Error(), "unterminated string") {
		t.Errorf("unterminated string: got %v", err)
	}
}

func TestMalformed(t *testing.T) {
	good := kernels.PTX("matmul")
	for i, src := range []string{
		"", "garbage", ".version", ".version 6.0 .target", "{{{{", ".entry", ".entry x(", ".version 99.0",
		strings.Replace(string(good), "LBB0_8:", "", 1),
		strings.Replace(string(good), "%r<27>", "%r<2>", 1),
		strings.Replace(string(good), "}", "", -1),
		strings.Replace(string(good), ";", "", 3),
		string(good[:len(good)/2]),
		".version 6.0\n.target sm_70\n.address_size 64\n.global .b8 x[4] = {1,2,3,4,5};",
		".version 6.0\n.target sm_70\n.address_size 64\n.visible .entry k() { .reg .b32 %r<100000000>; }",
	} {
		if _, err := Load([]byte(src)); abi.ResultOf(err) == abi.Success || abi.ResultOf(err) == abi.ErrUnknown {
			t.Errorf("case %d: Load succeeded or returned a bare error: %v", i, err)
		}
	}
}

func FuzzLoad(f *testing.F) {
	for _, n := range kernels.Names() {
		f.Add(kernels.PTX(n))
	}
	f.Add([]byte(tinyPTX))
	f.Add([]byte(callPTX))
	f.Add([]byte(tensorPTX))
	f.Fuzz(func(t *testing.T, src []byte) {
		m, err := Load(src)
		if err != nil {
			if abi.ResultOf(err) == abi.ErrUnknown {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		// run every kernel once on a tiny grid: it must not panic
		for _, name := range m.Kernels() {
			k, _ := m.Kernel(name)
			mem := newTestMem()
			buf := mem.alloc(4096)
			params := make([]byte, k.ParamSize)
			for _, p := range k.Params {
				if p.Size == 8 {
					putN(params[p.Offset:], 8, buf)
				} else if p.Size == 4 {
					putN(params[p.Offset:], 4, 16)
				}
			}
			globals := map[string]uint64{}
			for _, g := range m.Globals() {
				if g.Size > 1<<20 {
					return // too big to allocate here; Load's part is done
				}
				globals[g.Name] = mem.alloc(int(g.Size) + 1)
			}
			l := &Launch{Grid: [3]uint32{2, 1, 1}, Block: [3]uint32{40, 1, 1}, DynamicShared: 256,
				Params: params, Globals: globals, Memory: mem, Workers: 1}
			err := runBounded(k, l)
			if err != nil && abi.ResultOf(err) == abi.ErrUnknown {
				t.Fatalf("run error without a code: %v", err)
			}
			if abi.ResultOf(err) == abi.ErrLaunchFailed {
				t.Fatalf("internal error: %v", err)
			}
		}
	})
}

// runBounded runs a kernel that may loop forever.
func runBounded(k *Kernel, l *Launch) error {
	l.MaxBlockInstructions = 100000
	return k.Run(l)
}

func TestParamLayout(t *testing.T) {
	src := `.version 6.0
.target sm_70
.address_size 64
.visible .entry p(.param .u32 p_a, .param .align 8 .b8 p_s[12], .param .u64 p_p, .param .f32 p_f)
.maxntid 128, 1, 1
{
	ret;
}
`
	m, err := Load([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := m.Kernel("p")
	want := []Param{{"p_a", 0, 4, 4}, {"p_s", 8, 12, 8}, {"p_p", 24, 8, 8}, {"p_f", 32, 4, 4}}
	if len(k.Params) != len(want) || k.ParamSize != 36 {
		t.Fatalf("params %v size %d", k.Params, k.ParamSize)
	}
	for i := range want {
		if k.Params[i] != want[i] {
			t.Fatalf("param %d = %v, want %v", i, k.Params[i], want[i])
		}
	}
}

// An atom names exactly one operation; one with two is refused.
func TestAtomWithTwoOperations(t *testing.T) {
	for _, instr := range []string{
		"atom.global.xor.max.s64 %rd3, [%rd1], %rd2;",
		"atom.global.add.max.u64 %rd3, [%rd1], %rd2;",
		"red.global.and.or.b64 [%rd1], %rd2;",
	} {
		if _, err := Load([]byte(tinyAtom(instr))); abi.ResultOf(err) != abi.ErrInvalidPTX {
			t.Errorf("%s: Load = %v, want CUDA_ERROR_INVALID_PTX", instr, err)
		}
	}
	if _, err := Load([]byte(tinyAtom("atom.global.max.s64 %rd3, [%rd1], %rd2;"))); err != nil {
		t.Fatalf("one operation: %v", err)
	}
}

func tinyAtom(instr string) string {
	return ".version 7.0\n.target sm_80\n.address_size 64\n.visible .entry k(.param .u64 p) {\n" +
		".reg .b64 %rd<4>;\nld.param.u64 %rd1, [p];\nmov.u64 %rd2, 1;\n" + instr + "\nret;\n}\n"
}
