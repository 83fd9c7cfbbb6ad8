#!/usr/bin/env bash
# GPU validation suite: runs on a machine with an NVIDIA GPU, its driver,
# nvcc and gcc, but no Go. It uses binaries built elsewhere and carried
# here:
#   bin/kerfd, bin/kerf, bin/kerf-bench      go build -o bin/ ./cmd/...
#   bin/libcuda.so.1 (the client shim)       go build -buildmode=c-shared -o bin/libcuda.so.1 ./intercept
#   bin/libnvidia-ml.so.1 (its NVML name)    ln -s libcuda.so.1 bin/libnvidia-ml.so.1 (make build does both)
# It builds gpu/cuda/testdata/kernels.cu into a cubin and a fatbin and
# kerftest.c (driver API, our own header) into a program, then:
#   1. runs vadd and matmul natively, from the cubin and from the fatbin;
#   2. runs the same through Kerf (kerfd with KERF_GPU__BACKEND=auto on
#      this GPU) over the local path (unix) and over QUIC on loopback, and
#      requires byte-identical results (FNV-1a of the output);
#   3. fault isolation: one tenant's out-of-bounds kernel must get
#      CUDA_ERROR_ILLEGAL_ADDRESS while a neighbour's concurrent matmul
#      loop completes with the native result;
#   4. memory quota: a tenant whose token grants 256 MiB, and one asking
#      for 128 MiB with KERF_MEMORY, must hit CUDA_ERROR_OUT_OF_MEMORY
#      within their limit;
#   5. overhead: the same matmul loop native and over each path; ratios;
#   6. compute shares: `kerf bench shares --backend cuda`, tenants in 30%
#      and 70% slices contending without pause, each within ±5% of its
#      target in every 1 s window.
#   7. NVML through kerf run, on a quarter GPU over each path: the tenant's
#      libnvidia-ml.so.1 answers from the slice (intercept/nvml/testdata/
#      nvml_query.c: one device, memory total the slice's, the program in
#      the process list, utilization while its kernels run, temperature
#      NOT_SUPPORTED); and what nvidia-smi makes of it, recorded, not
#      judged (nvidia-smi also uses NVML functions NVIDIA does not
#      document, which Kerf does not serve); pynvml's answers, where it is
#      installed.
#   8. the CUDA-runtime programs (intercept/testdata/rt_*.cu, built with
#      nvcc, cudart static and shared): natively (recorded; rt_memory, rt_mempool, rt_vmm,
#      rt_peer and rt_pitched check what a Kerf slice answers, not a whole
#      GPU, and are not judged there) and through kerf run over each path
#      (judged: exit status 0).
#   9. PyTorch (scripts/gpu-test/torch_conv.py): a small convolutional
#      model's forward pass natively and through kerf run over each path;
#      outputs equal within the tolerance, and the time ratio recorded.
#  10. compute shares under both modes: `kerf bench shares --backend cuda`
#      with 2 tenants (50/50) and 4 (25% each), with SM partitions (where
#      kerfd's log says the GPU has them) and with --time-slicing; each
#      tenant's kernels/s and batch p99 recorded. Time-sliced runs are
#      judged as case 6; partitioned runs by every tenant running kernels
#      (their shares are SMs, not time, so the ±5% windows do not apply).
# Results go to $OUT (or a temporary directory): summary.txt (PASS/FAIL
# lines), results.txt (every figure), one .txt per run, kerfd.log,
# overhead.txt. Exit status 0 only if every case passed.
#
# DRY_RUN=1, where no GPU is: the forwarded cases only (2, 4, 7 to 10),
# against kerfd on the EMULATED GPU, with PTX for compute capability 8.0
# and nvcc's host compiler from NVCC_CCBIN (default clang-14). It checks
# the script and the forwarded path, not a GPU.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/kerf-gpu-test.XXXXXX)}
mkdir -p "$OUT"
W=$(mktemp -d /tmp/kerf-gpu-work.XXXXXX)
SRC=$ROOT/gpu/cuda/testdata
BIN=$ROOT/bin
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export PATH=$CUDA_HOME/bin:$PATH
KERFD_PID=
DRY_RUN=${DRY_RUN:-0}
RESULTS=$OUT/results.txt

fails=0
summary() { echo "$*" | tee -a "$OUT/summary.txt"; }
pass() { summary "PASS $*"; }
fail() { summary "FAIL $*"; fails=$((fails + 1)); }
skip() { summary "SKIP $*"; }
die() {
	summary "FAIL $*"
	echo "gpu-test: STOPPED: $*" >&2
	exit 1
}
# figure LINE...: a measured figure, into results.txt and the summary.
figure() { echo "$*" | tee -a "$RESULTS" >>"$OUT/summary.txt"; }
native() { [ "$DRY_RUN" != 1 ]; }

cleanup() {
	if [ -n "$KERFD_PID" ]; then
		kill "$KERFD_PID" 2>/dev/null
		wait "$KERFD_PID" 2>/dev/null
	fi
	rm -rf "$W"
}
trap cleanup EXIT

: >"$OUT/summary.txt"
: >"$RESULTS"
summary "kerf gpu-test $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
NVCC_FLAGS=()
if native; then
	command -v nvidia-smi >/dev/null || die "no nvidia-smi: not a GPU machine (DRY_RUN=1 checks the forwarded cases on the emulated GPU)"
	nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader | tee -a "$OUT/summary.txt" "$RESULTS"
	CC=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '. ')
	GPUS=$(nvidia-smi --query-gpu=name --format=csv,noheader | wc -l)
else
	summary "DRY RUN: no GPU; the forwarded cases against the EMULATED GPU (compute capability 8.0)"
	CC=80
	GPUS=1
	NVCC_FLAGS=(-ccbin "${NVCC_CCBIN:-clang-14}")
fi
command -v nvcc >/dev/null || die "no nvcc (set CUDA_HOME)"
nvcc --version | tail -1 | tee -a "$RESULTS" >>"$OUT/summary.txt"

# --- build ----------------------------------------------------------------
[ -n "$CC" ] || die "cannot read the GPU's compute capability"
if native; then
	nvcc -cubin -arch="sm_$CC" -o "$W/kernels.cubin" "$SRC/kernels.cu" || die "nvcc cubin"
	nvcc -fatbin -gencode "arch=compute_$CC,code=[sm_$CC,compute_$CC]" -o "$W/kernels.fatbin" "$SRC/kernels.cu" || die "nvcc fatbin"
	# Link against the toolkit's stub libcuda (SONAME libcuda.so.1): the
	# program then loads whichever libcuda.so.1 the loader finds first, the
	# driver's natively, Kerf's shim with LD_LIBRARY_PATH=bin.
	LIBCUDA=(-L"$CUDA_HOME/lib64/stubs" -L"$CUDA_HOME/lib64" -lcuda)
else
	# The emulator runs PTX: the "cubin" is PTX text, the fatbin PTX only.
	nvcc "${NVCC_FLAGS[@]}" -ptx -arch=compute_80 -o "$W/kernels.cubin" "$SRC/kernels.cu" || die "nvcc ptx"
	nvcc "${NVCC_FLAGS[@]}" -fatbin -gencode arch=compute_80,code=compute_80 -o "$W/kernels.fatbin" "$SRC/kernels.cu" || die "nvcc fatbin"
	LIBCUDA=(-L"$BIN" -l:libcuda.so.1)
fi
gcc -std=c11 -O2 -Wall -I"$ROOT/abi/include" -o "$W/kerftest" "$SRC/kerftest.c" "${LIBCUDA[@]}" -lm || die "gcc kerftest"
pass "build: sm_$CC cubin, fatbin, kerftest"

T=$W/kerftest
MM_CHECK=(96 80 112 3)        # matmul M N K iterations for the identity checks
MM_LONG=(2048 2048 2048 1000) # the neighbour's loop: seconds of GPU work
BENCHES=("128 128 128 2000" "512 512 512 200") # launch-bound, then compute-bound

# run NAME VIA ARGS...: one kerftest run, its line in $OUT/NAME.txt. VIA
# is native, or unix or quic with the tenant's variables from TENANT_ENV
# (an array: KERF_BUNDLE=..., KERF_MEMORY=...).
TENANT_ENV=()
run() {
	local name=$1 via=$2
	shift 2
	if [ "$via" = native ]; then
		"$T" "$@" >"$OUT/$name.txt" 2>"$OUT/$name.err"
	else
		env LD_LIBRARY_PATH="$BIN" KERF_VIA="$via" "${TENANT_ENV[@]}" "$T" "$@" >"$OUT/$name.txt" 2>"$OUT/$name.err"
	fi
}

# result NAME: the run's line without its timing.
result() { sed -e 's/ ms=[0-9.]*//' "$OUT/$1.txt"; }

# --- 1. native -------------------------------------------------------------
native && for img in cubin fatbin; do
	if run "native-vadd-$img" native vadd "$W/kernels.$img" 1000003; then
		pass "native vadd ($img): $(result "native-vadd-$img")"
	else
		fail "native vadd ($img): $(cat "$OUT/native-vadd-$img.txt" "$OUT/native-vadd-$img.err")"
	fi
	if run "native-matmul-$img" native matmul "$W/kernels.$img" "${MM_CHECK[@]}"; then
		pass "native matmul ($img): $(result "native-matmul-$img")"
	else
		fail "native matmul ($img): $(cat "$OUT/native-matmul-$img.txt" "$OUT/native-matmul-$img.err")"
	fi
done

# --- kerfd on this GPU ----------------------------------------------------
for f in kerfd libcuda.so.1; do
	[ -x "$BIN/$f" ] || [ -f "$BIN/$f" ] || die "missing $BIN/$f (build it where Go is, carry it here)"
done
STATE=$W/state
mkdir -p "$STATE"
export KERF_STATE_DIR=$STATE KERF_GPU__BACKEND=auto
if ! native; then
	export KERF_GPU__BACKEND=emulated KERF_GPU__EMULATED__DEVICES=2
	GPUS=2
fi
export KERF_LISTEN__QUIC=127.0.0.1:17443 KERF_LISTEN__HTTP=127.0.0.1:17080 KERF_LISTEN__UNIX=$STATE/kerf.sock
# kerfd itself must load the driver's libcuda, never the shim: no
# LD_LIBRARY_PATH pointing at bin/.
env -u LD_LIBRARY_PATH "$BIN/kerfd" >"$OUT/kerfd.log" 2>&1 &
KERFD_PID=$!
for _ in $(seq 60); do
	grep -q "kerfd ready" "$OUT/kerfd.log" 2>/dev/null && break
	kill -0 "$KERFD_PID" 2>/dev/null || break
	sleep 0.5
done
grep -q "kerfd ready" "$OUT/kerfd.log" || die "kerfd did not start: $(tail -5 "$OUT/kerfd.log")"
if native && grep "kerfd ready" "$OUT/kerfd.log" | grep -q "backend=emulated"; then
	die "kerfd serves the EMULATED GPU, not this one: $(grep -i -m3 'cuda\|nvml\|emulated' "$OUT/kerfd.log")"
fi
pass "kerfd: $(grep -m1 'kerfd ready' "$OUT/kerfd.log")"
# How kerfd enforces compute shares on each GPU: SM partitions or time.
grep "compute shares" "$OUT/kerfd.log" | tee -a "$RESULTS" >>"$OUT/summary.txt"
grep "compute shares" "$OUT/kerfd.log" | grep "gpu=0 " | grep -q "mode=sm-partitions" && PARTITIONED=1 || PARTITIONED=0
DEFAULT=$STATE/bundles/default.json
[ -f "$DEFAULT" ] || die "no bundle $DEFAULT"
env -u LD_LIBRARY_PATH "$BIN/kerfd" token issue neighbour >/dev/null || die "token issue neighbour"
env -u LD_LIBRARY_PATH "$BIN/kerfd" token issue --memory 256MiB small >/dev/null || die "token issue small"

# --- 2. identity through Kerf --------------------------------------------
for via in unix quic; do
	TENANT_ENV=("KERF_BUNDLE=$DEFAULT")
	for img in cubin fatbin; do
		for k in vadd matmul; do
			if [ $k = vadd ]; then args=(1000003); else args=("${MM_CHECK[@]}"); fi
			if ! native && run "$via-$k-$img" "$via" "$k" "$W/kernels.$img" "${args[@]}"; then
				pass "$via $k ($img) checked against the CPU: $(result "$via-$k-$img")"
			elif native && run "$via-$k-$img" "$via" "$k" "$W/kernels.$img" "${args[@]}" && [ "$(result "$via-$k-$img")" = "$(result "native-$k-$img")" ]; then
				pass "$via $k ($img) identical to native"
			else
				fail "$via $k ($img): got '$(cat "$OUT/$via-$k-$img.txt")' $(head -c 300 "$OUT/$via-$k-$img.err"), native '$(result "native-$k-$img")'"
			fi
		done
	done
done

# --- 3. fault isolation ---------------------------------------------------
# (on a GPU only: the neighbour's loop is seconds of GPU work)
if native; then
	run native-matmul-long native matmul "$W/kernels.cubin" "${MM_LONG[@]}" || fail "native long matmul"
	summary "neighbour's loop natively: $(cat "$OUT/native-matmul-long.txt")"
	for via in unix quic; do
		TENANT_ENV=("KERF_BUNDLE=$STATE/bundles/neighbour.json")
		run "$via-neighbour" "$via" matmul "$W/kernels.cubin" "${MM_LONG[@]}" &
		npid=$!
		sleep 1 # the neighbour is connected and inside its loop
		TENANT_ENV=("KERF_BUNDLE=$DEFAULT")
		run "$via-oob" "$via" oob "$W/kernels.cubin"
		orc=$?
		kill -0 $npid 2>/dev/null && overlap=yes || overlap="no (the neighbour had finished: lengthen MM_LONG)"
		wait $npid
		nrc=$?
		summary "$via: neighbour still running when the fault was reported: $overlap"
		if [ $orc -eq 0 ] && grep -q "result=700 CUDA_ERROR_ILLEGAL_ADDRESS sticky=1" "$OUT/$via-oob.txt"; then
			pass "$via fault: $(cat "$OUT/$via-oob.txt")"
		else
			fail "$via fault: '$(cat "$OUT/$via-oob.txt")' $(head -c 300 "$OUT/$via-oob.err")"
		fi
		if [ $nrc -eq 0 ] && [ "$(result "$via-neighbour")" = "$(result native-matmul-long)" ]; then
			pass "$via neighbour unaffected: $(cat "$OUT/$via-neighbour.txt")"
		else
			fail "$via neighbour: '$(cat "$OUT/$via-neighbour.txt")' $(head -c 300 "$OUT/$via-neighbour.err")"
		fi
	done
	kill -0 "$KERFD_PID" 2>/dev/null || die "kerfd died"
	pass "kerfd survived the faults"
fi

# --- 4. memory quota ------------------------------------------------------
# quota_check NAME LIMIT_BYTES: OOM reached, total is the limit, and
# what was allocated fits in it.
quota_check() {
	local name=$1 limit=$2 line
	line=$(cat "$OUT/$name.txt")
	local total alloc
	total=$(sed -n 's/.*total=\([0-9]*\).*/\1/p' <<<"$line")
	alloc=$(sed -n 's/.*allocated=\([0-9]*\).*/\1/p' <<<"$line")
	if [[ $line == *"result=2 CUDA_ERROR_OUT_OF_MEMORY"* ]] && [ "${total:-0}" -le "$limit" ] &&
		[ "${alloc:-0}" -gt 0 ] && [ "${alloc:-0}" -le "$limit" ]; then
		pass "$name: $line (limit $limit)"
	else
		fail "$name: '$line' $(head -c 300 "$OUT/$name.err") (limit $limit)"
	fi
}
for via in unix quic; do
	TENANT_ENV=("KERF_BUNDLE=$STATE/bundles/small.json")
	run "$via-quota-token" "$via" quota 16
	quota_check "$via-quota-token" $((256 << 20))
	TENANT_ENV=("KERF_BUNDLE=$DEFAULT" "KERF_MEMORY=128MiB")
	run "$via-quota-ask" "$via" quota 16
	quota_check "$via-quota-ask" $((128 << 20))
done

# --- 5. overhead ----------------------------------------------------------
if native; then
	ms() { sed -n 's/.* ms=\([0-9.]*\).*/\1/p' "$OUT/$1.txt"; }
	{
		echo "matmul loops (M N K iterations): wall time of the launches and the final synchronise"
		printf "%-20s %-8s %10s %8s\n" loop path ms ratio
	} >"$OUT/overhead.txt"
	TENANT_ENV=("KERF_BUNDLE=$DEFAULT")
	for bench in "${BENCHES[@]}"; do
		read -r -a shape <<<"$bench"
		tag=${bench// /x}
		if ! run "native-bench-$tag" native matmul "$W/kernels.cubin" "${shape[@]}"; then
			fail "native bench $bench"
			continue
		fi
		base=$(ms "native-bench-$tag")
		printf "%-20s %-8s %10s %8s\n" "$bench" native "$base" 1.00 >>"$OUT/overhead.txt"
		for via in unix quic; do
			name=$via-bench-$tag
			if run "$name" "$via" matmul "$W/kernels.cubin" "${shape[@]}" &&
				[ "$(result "$name")" = "$(result "native-bench-$tag")" ]; then
				printf "%-20s %-8s %10s %8.2f\n" "$bench" "$via" "$(ms "$name")" \
					"$(awk -v a="$(ms "$name")" -v b="$base" 'BEGIN { print (b > 0 ? a / b : 0) }')" >>"$OUT/overhead.txt"
				pass "$via overhead measured ($bench)"
			else
				fail "$via bench $bench: '$(cat "$OUT/$name.txt")' $(head -c 300 "$OUT/$name.err")"
			fi
		done
	done
	tee -a "$OUT/summary.txt" "$RESULTS" <"$OUT/overhead.txt"
fi

# --- 6. compute shares ----------------------------------------------------
native && for n in 256 1024; do
	if "$BIN/kerf" bench shares --backend cuda --kernel "$n" >"$OUT/shares-$n.txt" 2>&1 &&
		grep -q ' true$' "$OUT/shares-$n.txt" && ! grep -q ' false$' "$OUT/shares-$n.txt"; then
		pass "compute shares 30/70, matmul n=$n: every 1 s window within ±5%"
	else
		fail "compute shares 30/70, matmul n=$n: $(tail -n 4 "$OUT/shares-$n.txt")"
	fi
	tee -a "$OUT/summary.txt" "$RESULTS" <"$OUT/shares-$n.txt"
done

# --- 7. NVML ----------------------------------------------------------------
# nvml_query links both names of the shim; kerf run puts bin/ first on the
# library path, so it, and nvidia-smi, load Kerf's NVML, not the driver's.
if [ -e "$BIN/libnvidia-ml.so.1" ] && gcc -std=gnu11 -O2 -Wall -I"$ROOT/abi/include" -I"$ROOT/intercept/testdata" \
	-I"$ROOT/intercept/nvml/testdata" -o "$W/nvml_query" "$ROOT/intercept/nvml/testdata/nvml_query.c" \
	-L"$BIN" -l:libnvidia-ml.so.1 -l:libcuda.so.1 -ldl; then
	for via in unix quic; do
		if "$BIN/kerf" run --token "$DEFAULT" --shim "$BIN" --via "$via" -p 0.25 -- "$W/nvml_query" "$W/kernels.fatbin" \
			>"$OUT/$via-nvml.txt" 2>"$OUT/$via-nvml.err" && grep -q "^nvml ok" "$OUT/$via-nvml.txt"; then
			pass "$via NVML: $(cat "$OUT/$via-nvml.txt")"
		else
			fail "$via NVML: '$(cat "$OUT/$via-nvml.txt")' $(head -c 300 "$OUT/$via-nvml.err")"
		fi
		"$BIN/kerf" run --token "$DEFAULT" --shim "$BIN" --via "$via" -p 0.25 -- \
			nvidia-smi --query-gpu=name,uuid,memory.total,memory.used,utilization.gpu --format=csv,noheader \
			>"$OUT/$via-nvidia-smi.txt" 2>&1
		summary "$via nvidia-smi through kerf run (exit $?): $(head -c 300 "$OUT/$via-nvidia-smi.txt")"
	done
else
	fail "NVML: no $BIN/libnvidia-ml.so.1, or nvml_query does not build"
fi

# pynvml, where installed: what a Python monitoring agent sees.
if python3 -c 'import pynvml' 2>/dev/null; then
	for via in unix quic; do
		if "$BIN/kerf" run --token "$DEFAULT" --shim "$BIN" --via "$via" -p 0.25 -- python3 -c '
import pynvml
pynvml.nvmlInit()
n = pynvml.nvmlDeviceGetCount()
h = pynvml.nvmlDeviceGetHandleByIndex(0)
m = pynvml.nvmlDeviceGetMemoryInfo(h)
name = pynvml.nvmlDeviceGetName(h)
print("pynvml count=%d name=%s total=%d used=%d" % (n, name.decode() if isinstance(name, bytes) else name, m.total, m.used))
assert n == 1, n
' >"$OUT/$via-pynvml.txt" 2>"$OUT/$via-pynvml.err"; then
			pass "$via pynvml: $(cat "$OUT/$via-pynvml.txt")"
		else
			fail "$via pynvml: '$(cat "$OUT/$via-pynvml.txt")' $(tail -c 300 "$OUT/$via-pynvml.err")"
		fi
	done
else
	skip "pynvml is not installed"
fi

# jget FILE KEY: a top-level value of the JSON object on FILE's last line.
jget() { tail -n 1 "$1" | python3 -c 'import json, sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$2"; }

# --- 8. CUDA-runtime programs ----------------------------------------------
RT_SRC=$ROOT/intercept/testdata
RT_PROGRAMS=(rt_memory rt_kernels rt_occupancy rt_pointers rt_pitched rt_peer rt_callbacks rt_printf rt_graphs rt_graphupdate rt_managed rt_limits rt_texture rt_coop rt_mempool rt_vmm rt_texlod)
RT_SLICE_ONLY=" rt_memory rt_peer rt_pitched rt_mempool rt_vmm " # they check a Kerf slice's answers
RT_EMU_ONLY=" rt_texlod "                                        # the CUDA backend refuses cube maps and mipmaps
RT_SLICE=$((256 << 20))                        # the slice's memory, and the programs' argument
if native; then RT_GENCODE="arch=compute_$CC,code=[sm_$CC,compute_$CC]"; else RT_GENCODE=arch=compute_80,code=compute_80; fi
RT_RPATH=()
[ -d "$CUDA_HOME/lib64" ] && RT_RPATH=(-Xlinker "-rpath=$CUDA_HOME/lib64")
rt_built=()
for p in "${RT_PROGRAMS[@]}"; do
	for link in static shared; do
		if nvcc "${NVCC_FLAGS[@]}" -gencode "$RT_GENCODE" -cudart "$link" "${RT_RPATH[@]}" -o "$W/${p}_$link" "$RT_SRC/$p.cu" \
			>"$OUT/build-${p}_$link.txt" 2>&1; then
			rt_built+=("${p}_$link")
		else
			fail "nvcc $p ($link cudart): $(head -c 300 "$OUT/build-${p}_$link.txt")"
		fi
	done
done
summary "runtime programs built: ${#rt_built[@]} of $((2 * ${#RT_PROGRAMS[@]}))"
for prog in "${rt_built[@]}"; do
	base=${prog%_*}
	gpus=1
	[ "$base" = rt_peer ] && gpus=2
	if native; then
		"$W/$prog" "$RT_SLICE" >"$OUT/native-$prog.txt" 2>&1
		rc=$?
		if [[ $RT_SLICE_ONLY == *" $base "* ]]; then
			summary "native $prog (exit $rc, not judged: it checks a Kerf slice): $(head -c 200 "$OUT/native-$prog.txt")"
		elif [ $rc -eq 0 ]; then
			pass "native $prog"
		else
			fail "native $prog: exit $rc: $(head -c 300 "$OUT/native-$prog.txt")"
		fi
	fi
	if [ "$gpus" -gt "$GPUS" ]; then
		skip "$prog through Kerf: it needs $gpus GPUs, this machine has $GPUS"
		continue
	fi
	if [[ $RT_EMU_ONLY == *" $base "* ]]; then
		skip "$prog through Kerf: the CUDA backend refuses cube maps and mipmapped textures (docs/gpu-validation.md)"
		continue
	fi
	for via in unix quic; do
		if "$BIN/kerf" run --token "$DEFAULT" --shim "$BIN" --via "$via" -n "$gpus" --memory 256MiB -- "$W/$prog" "$RT_SLICE" \
			>"$OUT/$via-$prog.txt" 2>&1; then
			pass "$via $prog"
		else
			fail "$via $prog: $(tail -c 400 "$OUT/$via-$prog.txt")"
		fi
	done
done

# --- 9. PyTorch ---------------------------------------------------------------
TORCH=$ROOT/scripts/gpu-test/torch_conv.py
if python3 -c 'import torch' 2>/dev/null; then
	if native; then
		if python3 "$TORCH" run "$W/torch-native.pt" >"$OUT/torch-native.txt" 2>"$OUT/torch-native.err"; then
			pass "PyTorch natively: $(tail -n 1 "$OUT/torch-native.txt")"
		else
			fail "PyTorch natively: $(tail -c 400 "$OUT/torch-native.err")"
		fi
	fi
	for via in unix quic; do
		if ! "$BIN/kerf" run --token "$DEFAULT" --shim "$BIN" --via "$via" -p 0.5 -- python3 "$TORCH" run "$W/torch-$via.pt" \
			>"$OUT/torch-$via.txt" 2>"$OUT/torch-$via.err"; then
			fail "PyTorch $via: $(tail -c 400 "$OUT/torch-$via.err")"
			continue
		fi
		if ! native; then
			pass "PyTorch $via ran: $(tail -n 1 "$OUT/torch-$via.txt")"
			continue
		fi
		if python3 "$TORCH" compare "$W/torch-native.pt" "$W/torch-$via.pt" >"$OUT/torch-compare-$via.txt" 2>&1; then
			pass "PyTorch $via matches native: $(cat "$OUT/torch-compare-$via.txt")"
		else
			fail "PyTorch $via differs from native: $(cat "$OUT/torch-compare-$via.txt")"
		fi
		fwd=$(jget "$OUT/torch-$via.txt" ms_per_forward) nat=$(jget "$OUT/torch-native.txt" ms_per_forward)
		figure "PyTorch conv forward pass: native $nat ms, $via $fwd ms, ratio $(awk -v a="$fwd" -v b="$nat" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
	done
elif native; then
	fail "PyTorch: python3 cannot import torch"
else
	skip "PyTorch: python3 cannot import torch here"
fi

# --- 10. compute shares, SM partitions against time-slicing ------------------
# shares_table FILE TIMED: the bench's tenants, one line each; exit 1 if
# a tenant ran no kernels or, when TIMED=1, missed its share (±5%) in a
# window.
shares_table() {
	python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
timed = sys.argv[2] == "1"
ok = True
for i, t in enumerate(r["tenants"]):
    print("  tenant %d: share %.0f%%, GPU time %.1f%%, %d kernels, %.0f kernels/s, batch p99 %.3f ms (%.3f ms a kernel), worst window %.1f%%"
          % (i, 100 * t["target"], 100 * t["mean"], t["kernels"], t["kernels_per_second"], t["batch_p99_ns"] / 1e6,
             t["batch_p99_ns"] / 8e6, 100 * t["worst_relative_error"]))
    ok = ok and t["kernels"] > 0 and (not timed or t["worst_relative_error"] <= 0.05)
print("  GPU busy %.0f%% of the time" % (100 * r["utilisation"]))
sys.exit(0 if ok else 1)
PY
}
if native; then SHARES_ARGS=(--backend cuda --kernel 256 --time 10s --alone 0); else SHARES_ARGS=(--backend emulated --time 3s --alone 0); fi
for set in 0.5,0.5 0.25,0.25,0.25,0.25; do
	n=$(tr ',' '\n' <<<"$set" | wc -l)
	for mode in sm-partitions time-slicing; do
		flags=()
		timed=1
		label=$mode
		if [ "$mode" = time-slicing ]; then
			flags=(--time-slicing)
		elif [ "$PARTITIONED" = 1 ]; then
			timed=0
		else
			label="sm-partitions asked for, time-sliced (kerfd: $(grep -m1 "compute shares" "$OUT/kerfd.log" | sed -n 's/.*reason=//p'))"
		fi
		native || timed=0 # the emulator's figures are not judged here
		name=shares-$mode-$n
		if ! "$BIN/kerf" bench shares "${SHARES_ARGS[@]}" "${flags[@]}" --shares "$set" --json >"$OUT/$name.json" 2>"$OUT/$name.err"; then
			fail "compute shares, $n tenants, $label: $(tail -c 400 "$OUT/$name.err")"
			continue
		fi
		figure "compute shares, $n tenants ($set), $label:"
		if shares_table "$OUT/$name.json" "$timed" >"$OUT/$name.txt"; then
			pass "compute shares, $n tenants, $label"
		else
			fail "compute shares, $n tenants, $label: a tenant ran no kernels or missed its share"
		fi
		tee -a "$RESULTS" "$OUT/summary.txt" <"$OUT/$name.txt" >/dev/null
	done
done

summary "$fails failure(s); outputs in $OUT (figures in $RESULTS)"
if [ "$fails" -ne 0 ]; then
	echo "gpu-test: FAILED: $fails case(s); see $OUT/summary.txt" >&2
	exit 1
fi
