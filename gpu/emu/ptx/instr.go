package ptx

// opcode is a decoded operation: PTX opcode and operand type folded
// together, so that the interpreter switches once per instruction.
type opcode uint8

const (
	opNop opcode = iota
	opMov
	opAddImm // d = a + off (cvta between windows)
	opAdd32
	opAdd64
	opSub32
	opSub64
	opMulLo32
	opMulLo64
	opMulHiS32
	opMulHiU32
	opMulHiS64
	opMulHiU64
	opMulWideS32
	opMulWideU32
	opMulWideS16
	opMulWideU16
	opMadLo32
	opMadLo64
	opMadWideS32
	opMadWideU32
	opMadHiS32
	opMadHiU32
	opDivS32
	opDivU32
	opDivS64
	opDivU64
	opRemS32
	opRemU32
	opRemS64
	opRemU64
	opMinS32
	opMinU32
	opMinS64
	opMinU64
	opMaxS32
	opMaxU32
	opMaxS64
	opMaxU64
	opAbsS32
	opAbsS64
	opNeg32
	opNeg64
	opAnd
	opOr
	opXor
	opNot
	opNotPred
	opCnot
	opShl32
	opShl64
	opShrU32
	opShrS32
	opShrU64
	opShrS64
	opPopc32
	opPopc64
	opClz32
	opClz64
	opBrev32
	opBrev64
	opBfeU32
	opBfeS32
	opBfeU64
	opBfeS64
	opBfi32
	opBfi64
	opPrmt
	opAddF32
	opSubF32
	opMulF32
	opFmaF32
	opDivF32
	opMinF32
	opMaxF32
	opAbsF32
	opNegF32
	opSqrtF32
	opRcpF32
	opRsqrtF32
	opEx2F32
	opLg2F32
	opSinF32
	opCosF32
	opAddF64
	opSubF64
	opMulF64
	opFmaF64
	opDivF64
	opMinF64
	opMaxF64
	opAbsF64
	opNegF64
	opSqrtF64
	opRcpF64
	opRsqrtF64
	opSetpS // signed integer compare, sign-extended by typ
	opSetpU
	opSetpF32
	opSetpF64
	opSelp
	opCvt
	opPack64   // mov.b64 d, {a, b}
	opUnpack64 // mov.b64 {d, e}, a
	opLd
	opSt
	opAtom
	opShfl
	opVote
	opActivemask
	opBra
	opExit
	opBar
	opSatF32 // clamp f32 to [0, 1]: follows an instruction with .sat
	opCall   // off indexes Kernel.calls
	opRet    // off indexes Kernel.funcs
	opTrap
	opClock  // mod: which clock
	opNarrow // 8- and 16-bit integer arithmetic: mod is the operation, typ the type
	opShf    // funnel shift: mod bit 0 right, bit 1 clamp
	opBfind
	opBfindShift
	opDp4a // mod bit 0: a signed, bit 1: b signed
	opDp2aLo
	opDp2aHi
	opRedux    // mod: the operation (atom names), typ
	opMatch    // mod: 0 any, 1 all
	opPack32   // mov.b32 d, {a, b}: two 16-bit halves
	opUnpack32 // mov.b32 {d, e}, a
	opSad32    // sad: |a-b| + c; mod 1 when signed
	opHalf     // mod: the operation, typ the half type, e the rounding mode; fSat is relu
	opSetpHalf // setp of a half type; a pair's high result goes to e
	opFloatRnd // mod: the operation, typ f32 or f64, e the directed rounding mode
	opCpAsync  // mod: bytes; a+off the shared destination, b+target the global source, c the source size
	opTex      // mod: geometry, typ: result, styp: coordinates, a: handle, off: Kernel.texOps
	opTld4     // as opTex; e: the component gathered
	opSuld     // as opTex; typ: element, vec, space: out-of-range mode
	opSust     // as opSuld
	opTxq      // mod: the query; space: 0 texture, 1 surface
	opMbar     // mod: the operation; space; a+off the barrier; b the count or state
	opMbarWait // mod: 0 state, 1 parity; d the result; a+off the barrier; b the state or parity
	opYield    // nanosleep: let the block's other warps run
	opCvtTF32  // cvt.rna.tf32.f32
	opMma      // mod: the matrix instruction kind; target: Kernel.mmaOps; a+off the address, b the stride
	// forms on predicates held as lane masks (predbits.go)
	opSetpSBits
	opSetpUBits
	opSetpF32Bits
	opSetpF64Bits
	opAndBits
	opOrBits
	opXorBits
	opNotBits
	opSelpBits
	// shifts by an immediate, clamped into off (shiftimm.go)
	opShl32Imm
	opShl64Imm
	opShrU32Imm
	opShrS32Imm
	opShrU64Imm
	opShrS64Imm
	opAdd32Imm // add or sub of an immediate, in off, at 32 bits (64 bits: opAddImm)
	// forms that track warp-uniform registers (uniform.go)
	opUni   // mod: the operation tracked
	opLdUni // ld of a kernel parameter
	// an instruction that may write a kept setp's source (keepsetp.go)
	opKill
	numOps
)

// Comparison operators of setp, in mod.
const (
	cmpEq uint8 = iota
	cmpNe
	cmpLt
	cmpLe
	cmpGt
	cmpGe
	cmpEqu
	cmpNeu
	cmpLtu
	cmpLeu
	cmpGtu
	cmpGeu
	cmpNum
	cmpNan
)

var cmpNames = map[string]uint8{
	"eq": cmpEq, "ne": cmpNe, "lt": cmpLt, "le": cmpLe, "gt": cmpGt, "ge": cmpGe,
	"lo": cmpLt, "ls": cmpLe, "hi": cmpGt, "hs": cmpGe,
	"equ": cmpEqu, "neu": cmpNeu, "ltu": cmpLtu, "leu": cmpLeu, "gtu": cmpGtu, "geu": cmpGeu,
	"num": cmpNum, "nan": cmpNan,
}

// Rounding modes of cvt, in mod.
const (
	rndNone uint8 = iota
	rndRn
	rndRz
	rndRm
	rndRp
	rndRni // round to integral, nearest even
	rndRzi
	rndRmi
	rndRpi
)

var rndNames = map[string]uint8{
	"rn": rndRn, "rz": rndRz, "rm": rndRm, "rp": rndRp,
	"rni": rndRni, "rzi": rndRzi, "rmi": rndRmi, "rpi": rndRpi,
}

// Memory spaces, in space.
const (
	spGeneric uint8 = iota
	spGlobal
	spShared
	spLocal
	spParam
	spConst
)

// Atomic operations, in mod.
const (
	atAdd uint8 = iota
	atMin
	atMax
	atAnd
	atOr
	atXor
	atExch
	atCas
	atInc
	atDec
)

var atomNames = map[string]uint8{
	"add": atAdd, "min": atMin, "max": atMax, "and": atAnd, "or": atOr, "xor": atXor,
	"exch": atExch, "cas": atCas, "inc": atInc, "dec": atDec,
}

// Shuffle and vote modes, in mod.
const (
	shflUp uint8 = iota
	shflDown
	shflBfly
	shflIdx
)

const (
	voteAll uint8 = iota
	voteAny
	voteUni
	voteBallot
)

// instruction flags
const (
	fPred     = 1 << iota // guarded by a predicate register
	fPredNeg              // guard is negated (@!%p)
	fSat                  // saturate (cvt)
	fPredOut              // shfl writes a second, predicate destination (e)
	fUniform              // ld address is the same for every lane (a symbol)
	fSync                 // volatile, relaxed, acquire or release ld/st: one atomic access per lane
	fPredBits             // the guard is a predicate held as a lane mask
	fBraNext              // a mask form whose result the next instruction, a branch, is guarded by
)

// instr is one decoded instruction. Register operands are indices into
// the warp's register file; immediates, special registers and symbol
// addresses live in read-only registers set up before a warp runs.
type instr struct {
	op     opcode
	typ    vtype // operation type (ld/st/atom/cvt destination)
	styp   vtype // cvt source type
	mod    uint8
	space  uint8
	flags  uint8
	vec    uint8 // ld/st vector width (1, 2 or 4)
	pred   uint16
	d      uint16
	a      uint16
	b      uint16
	c      uint16
	e      uint16
	regs   [4]uint16 // ld/st vector registers
	off    int64     // address offset, or immediate for opAddImm
	target int32     // branch target
	line   int32
}
