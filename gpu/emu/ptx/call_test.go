package ptx

import (
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/abi"
)

// callPTX is nvcc's shape of calls, written out so that the test runs
// without nvcc: a prototype, then the definition; a recursive function;
// a table of function pointers in a global; an indirect call with a
// .callprototype; call sequences in nested blocks that redeclare their
// parameters and temp_param_reg.
const callPTX = `.version 7.8
.target sm_80
.address_size 64
.func (.param .b32 func_retval0) sum_to(.param .b32 sum_to_param_0);
.func (.param .b32 func_retval0) twice(.param .b32 twice_param_0)
{
	.reg .b32 %r<3>;
	ld.param.u32 %r1, [twice_param_0];
	add.s32 %r2, %r1, %r1;
	st.param.b32 [func_retval0+0], %r2;
	ret;
}
.func (.param .b32 func_retval0) square(.param .b32 square_param_0)
{
	.reg .b32 %r<3>;
	ld.param.u32 %r1, [square_param_0];
	mul.lo.s32 %r2, %r1, %r1;
	st.param.b32 [func_retval0+0], %r2;
	ret;
}
.global .align 8 .u64 table[2] = {twice, square};
.func (.param .b32 func_retval0) sum_to(.param .b32 sum_to_param_0)
{
	.reg .pred %p<2>;
	.reg .b32 %r<5>;
	ld.param.u32 %r1, [sum_to_param_0];
	setp.lt.s32 %p1, %r1, 1;
	@%p1 bra $L__done;
	add.s32 %r2, %r1, -1;
	{ // callseq 0, 0
	.reg .b32 temp_param_reg;
	.param .b32 param0;
	st.param.b32 [param0+0], %r2;
	.param .b32 retval0;
	call.uni (retval0), sum_to, (param0);
	ld.param.b32 %r3, [retval0+0];
	} // callseq 0
	add.s32 %r4, %r3, %r1;
	st.param.b32 [func_retval0+0], %r4;
	ret;
$L__done:
	st.param.b32 [func_retval0+0], %r1;
	ret;
}
.visible .entry calls(.param .u64 calls_param_0)
{
	.reg .b32 %r<8>;
	.reg .b64 %rd<9>;
	ld.param.u64 %rd1, [calls_param_0];
	mov.u32 %r1, %tid.x;
	{ // callseq 1, 0
	.reg .b32 temp_param_reg;
	.param .b32 param0;
	st.param.b32 [param0+0], %r1;
	.param .b32 retval0;
	call.uni (retval0), sum_to, (param0);
	ld.param.b32 %r2, [retval0+0];
	} // callseq 1
	and.b32 %r3, %r1, 1;
	mul.wide.u32 %rd2, %r3, 8;
	mov.u64 %rd3, table;
	add.s64 %rd4, %rd3, %rd2;
	ld.global.u64 %rd5, [%rd4];
	{ // callseq 2, 0
	.reg .b32 temp_param_reg;
	.param .b32 param0;
	st.param.b32 [param0+0], %r1;
	.param .b32 retval0;
	prototype_2 : .callprototype (.param .b32 _) _ (.param .b32 _);
	call (retval0), %rd5, (param0), prototype_2;
	ld.param.b32 %r4, [retval0+0];
	} // callseq 2
	mul.wide.u32 %rd6, %r1, 8;
	add.s64 %rd7, %rd1, %rd6;
	st.global.v2.u32 [%rd7], {%r2, %r4};
	ret;
}
`

// Recursion and indirect calls run, in every lane, diverging.
func TestCalls(t *testing.T) {
	m, err := Load([]byte(callPTX))
	if err != nil {
		t.Fatal(err)
	}
	k := mustKernel(t, m, "calls")
	if k.LocalSize < recursionStack {
		t.Fatalf("a recursive kernel has %d bytes of local memory", k.LocalSize)
	}
	mem := newTestMem()
	out := mem.alloc(8 * 40)
	l := launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{40, 1, 1}, 0, packParams(t, k, out), 1)
	l.Globals = globalsOf(mem, m)
	if err := k.Run(l); err != nil {
		t.Fatal(err)
	}
	got := mem.getU32(out, 80)
	for i := range uint32(40) {
		want := [2]uint32{i * (i + 1) / 2, 2 * i}
		if i&1 == 1 {
			want[1] = i * i
		}
		if [2]uint32(got[2*i:2*i+2]) != want {
			t.Fatalf("thread %d: %v, want %v", i, got[2*i:2*i+2], want)
		}
	}
}

// A recursion too deep for the stack fails the launch; a call through
// a pointer that is no function fails too.
func TestCallFaults(t *testing.T) {
	m, err := Load([]byte(callPTX))
	if err != nil {
		t.Fatal(err)
	}
	k := mustKernel(t, m, "calls")
	mem := newTestMem()
	out := mem.alloc(8 * 1024)
	l := launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{1024, 1, 1}, 0, packParams(t, k, out), 1)
	l.Globals = globalsOf(mem, m)
	err = k.Run(l)
	wantCode(t, err, abi.ErrIllegalAddress) // sum_to(1023) overflows 16 KiB of frames

	l = launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{8, 1, 1}, 0, packParams(t, k, out), 1)
	l.Globals = globalsOf(mem, m)
	putN(mem.bytes(l.Globals["table"]), 8, 0x1234) // not a function
	err = k.Run(l)
	wantCode(t, err, abi.ErrIllegalAddress)
}

// Calls that cannot run are refused at load, naming the instruction.
func TestCallLoadErrors(t *testing.T) {
	for _, c := range []struct{ from, to string }{
		{"call.uni (retval0), sum_to, (param0);\n\tld.param.b32 %r2", "call.uni (retval0), nosuch, (param0);\n\tld.param.b32 %r2"},
		{"call.uni (retval0), sum_to, (param0);\n\tld.param.b32 %r2", "call.uni (retval0), sum_to, (param0, param0);\n\tld.param.b32 %r2"},
		{"call (retval0), %rd5, (param0), prototype_2;", "call (retval0), %rd5, (param0), prototype_9;"},
		{".visible .entry calls", ".extern .func (.param .b32 func_retval0) malloc(.param .b64 malloc_param_0);\n.visible .entry calls"},
	} {
		src := replaceOnce(t, callPTX, c.from, c.to)
		if c.to[0] == '.' {
			src = replaceOnce(t, src, "call.uni (retval0), sum_to, (param0);\n\tld.param.b32 %r2", "call.uni (retval0), malloc, (param0);\n\tld.param.b32 %r2")
		}
		if _, err := Load([]byte(src)); abi.ResultOf(err) != abi.ErrInvalidPTX {
			t.Errorf("%q: Load = %v, want CUDA_ERROR_INVALID_PTX", c.to, err)
		}
	}
}

func replaceOnce(t *testing.T, s, from, to string) string {
	t.Helper()
	if !strings.Contains(s, from) {
		t.Fatalf("%q not in source", from)
	}
	return strings.Replace(s, from, to, 1)
}

// A function that sets its return address back to the call before
// loops through call and ret alone (the return address lies in the
// frame, below its locals); the watchdog still ends it.
func TestCallLoopEndsAtWatchdog(t *testing.T) {
	src := `.version 7.8
.target sm_80
.address_size 64
.func f()
{
	.local .align 8 .b8 __local_depot0[8];
	.reg .pred %p<2>;
	.reg .b64 %rd<3>;
	.reg .b64 %SPL;
	mov.u64 %SPL, __local_depot0;
	ld.local.u64 %rd1, [%SPL+-8];
	setp.eq.s64 %p1, %rd1, 0;
	@%p1 bra $L__out;
	add.s64 %rd2, %rd1, -1;
	st.local.u64 [%SPL+-8], %rd2;
$L__out:
	ret;
}
.visible .entry k()
{
	call.uni f, ();
	call.uni f, ();
	ret;
}
`
	m, err := Load([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	k := mustKernel(t, m, "k")
	l := launch(k, newTestMem(), [3]uint32{1, 1, 1}, [3]uint32{32, 1, 1}, 0, nil, 1)
	l.MaxBlockInstructions = 10000
	err = k.Run(l)
	wantCode(t, err, abi.ErrLaunchTimeout)
}
