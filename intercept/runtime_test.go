package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/kerf-edge/kerf/internal/kerfenv"
)

// The CUDA-runtime tests build our own .cu programs with nvcc (NVIDIA's
// CUDA 11.8 toolkit; CI installs it) and run them under the shim, linked
// against cudart both statically and shared. Kernels are compiled to PTX
// only, for a GPU the emulator could run.

// cudartLinks are the two ways a program links the CUDA runtime.
var cudartLinks = []string{"static", "shared"}

var (
	nvccOnce sync.Once
	nvccErr  error
	nvccSkip string
)

// rtPrograms are the runtime test programs in testdata, without .cu.
var rtPrograms = []string{"rt_memory", "rt_kernels", "rt_occupancy", "rt_pointers", "rt_pitched", "rt_peer", "rt_callbacks", "rt_printf", "rt_graphs", "rt_graphupdate", "rt_managed", "rt_limits", "rt_texture", "rt_coop", "rt_mempool", "rt_vmm", "rt_texlod"}

// rtDevices is how many devices a runtime program runs with; one unless named.
var rtDevices = map[string]int{"rt_peer": 2}

// rtEmulatorOnly are the runtime programs the CUDA backend does not
// serve yet, and why (docs/gpu-validation.md lists them).
var rtEmulatorOnly = map[string]string{
	"rt_texlod": "the CUDA backend refuses cube maps and mipmapped textures (CUDA_ERROR_NOT_SUPPORTED)",
}

func rtGPUs(p string) int { return max(1, rtDevices[p]) }

// buildRuntimePrograms compiles every runtime program both ways into
// binDir, once; it skips the test when nvcc is absent.
func buildRuntimePrograms(t *testing.T) {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	nvccOnce.Do(func() {
		nvcc, err := exec.LookPath("nvcc")
		if err != nil {
			nvccSkip = "nvcc is not installed: the CUDA-runtime programs need NVIDIA's CUDA toolkit (apt-get install nvidia-cuda-toolkit clang-14, from Debian non-free; .ci/run does)"
			return
		}
		host := "clang-14" // nvcc 11.8 refuses gcc 12
		if _, err := exec.LookPath(host); err != nil {
			nvccErr = fmt.Errorf("nvcc needs %s as its host compiler: %w", host, err)
			return
		}
		// A toolkit outside the system library path (/usr/local/cuda) has
		// libcudart.so next to nvcc.
		var rpath []string
		if lib := filepath.Join(filepath.Dir(filepath.Dir(nvcc)), "lib64"); fileExists(lib) {
			rpath = []string{"-Xlinker", "-rpath=" + lib}
		}
		var wg sync.WaitGroup
		errs := make([]error, len(rtPrograms)*len(cudartLinks))
		for i, p := range rtPrograms {
			for j, link := range cudartLinks {
				wg.Add(1)
				go func() {
					defer wg.Done()
					args := []string{"-ccbin", host, "-gencode", "arch=compute_80,code=compute_80", "-cudart", link,
						"-o", filepath.Join(binDir, p+"_"+link), filepath.Join("testdata", p+".cu")}
					args = append(args, rpath...)
					if out, err := exec.Command(nvcc, args...).CombinedOutput(); err != nil {
						errs[i*len(cudartLinks)+j] = fmt.Errorf("nvcc %s (%s cudart): %v\n%s", p, link, err, out)
					}
				}()
			}
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil && nvccErr == nil {
				nvccErr = err
			}
		}
	})
	if nvccSkip != "" {
		t.Skip(nvccSkip)
	}
	if nvccErr != nil {
		t.Fatal(nvccErr)
	}
}

// rtSlice is the memory of the slice the runtime programs run in.
const rtSlice = 8 << 20

func TestRuntimePrograms(t *testing.T) {
	buildRuntimePrograms(t)
	k := startKerfd(t)
	b := k.bundle(t, "alice")
	for _, via := range vias {
		for _, link := range cudartLinks {
			for _, p := range rtPrograms {
				t.Run(via+"/"+p+"_"+link, func(t *testing.T) {
					t.Parallel()
					kerfRun(t, b, via, rtGPUs(p), rtSlice, p+"_"+link, fmt.Sprint(rtSlice))
				})
			}
		}
	}
}

// A kernel's printf output reaches the program's stdout at the
// synchronising calls after it (device and stream synchronisation, a
// blocking copy), in order and in its place among the host's lines.
func TestRuntimePrintf(t *testing.T) {
	buildRuntimePrograms(t)
	k := startKerfd(t)
	b := k.bundle(t, "alice")
	want := strings.Join([]string{
		"host: start",
		"launch 0 thread 0 of 2", "launch 0 thread 1 of 2",
		"host: between",
		"launch 1 thread 0 of 3", "launch 1 thread 1 of 3", "launch 1 thread 2 of 3",
		"launch 2 thread 0 of 1",
		"host: end",
	}, "\n") + "\n"
	for _, via := range vias {
		t.Run(via, func(t *testing.T) {
			if got := kerfRunOutput(t, b, via, 1, rtSlice, "rt_printf_shared"); got != want {
				t.Fatalf("stdout:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// The printf FIFO's size set by the program reaches the device, which
// keeps the lines that fit; an illegal address stays until
// cudaDeviceReset, which restores the default limits.
func TestRuntimeLimitsAndReset(t *testing.T) {
	buildRuntimePrograms(t)
	k := startKerfd(t)
	b := k.bundle(t, "alice")
	var want strings.Builder
	for i := range 8 {
		fmt.Fprintf(&want, "line %02d\n", i)
	}
	want.WriteString("host: after the small FIFO\n")
	for i := range 12 {
		fmt.Fprintf(&want, "line %02d\n", i)
	}
	want.WriteString("limits ok\n")
	for _, via := range vias {
		for _, link := range cudartLinks {
			t.Run(via+"/"+link, func(t *testing.T) {
				if got := kerfRunOutput(t, b, via, 1, rtSlice, "rt_limits_"+link); got != want.String() {
					t.Fatalf("stdout:\n%s\nwant:\n%s", got, want.String())
				}
			})
		}
	}
}

// deliberatelyAbsent lists the entry points the CUDA 11.8 runtime asks
// cuGetProcAddress for that the shim does not serve, by name prefix, each
// with why. cudart resolves its whole driver table at start and fails only
// the runtime calls that need a missing entry point
// (cudaErrorNotSupported), so programs that do not use them run.
var deliberatelyAbsent = []struct {
	reason string
	names  []string // exact names, or prefixes ending in "*"
}{
	{"graphs are recorded by the shim with kernel, memcpy, memset, host, empty and child-graph nodes, whose kernel nodes' parameters may be read and set, " +
		"and executable graphs' kernel, memcpy and memset nodes set and the whole updated; the other node parameters, event, memory and conditional nodes, " +
		"user objects and capture-dependency edits are not offered",
		[]string{"cuGraph*", "cuStreamUpdateCaptureDependencies", "cuUserObject*",
			"cuDeviceGraphMemTrim", "cuDeviceGetGraphMemAttribute", "cuDeviceSetGraphMemAttribute"}},
	{"texture and surface references (the API before objects), sparse and planar arrays are not served: texture and surface objects over plain, cube-map and mipmapped arrays and device memory are",
		[]string{"cuTex*", "cuSurf*", "cuArray*", "cuMipmappedArray*", "cuModuleGetTexRef", "cuModuleGetSurfRef",
			"cuDeviceGetTexture1DLinearMaxWidth"}},
	{"no graphics interop: a slice may be on another machine",
		[]string{"cuGL*", "cuGraphics*", "cuEGL*", "cuVDPAU*"}},
	{"no memory or semaphores shared with other APIs or processes: slices are isolated",
		[]string{"cuImportExternal*", "cuExternalMemory*", "cuDestroyExternal*", "cuSignalExternalSemaphoresAsync",
			"cuWaitExternalSemaphoresAsync", "cuDeviceGetNvSciSyncAttributes", "cuIpc*",
			"cuMemPoolExport*", "cuMemPoolImport*"}},
	{"no peer access: each slice of a lease is its own session",
		[]string{"cuMemcpy3DPeer*", "cuDeviceGetP2PAttribute"}},
	{"unified copies and stream attachment need one address space for host and device, which kerfd's device addresses share with the program only for managed and mapped memory",
		[]string{"cuStreamAttachMemAsync", "cuPointerSetAttribute", "cuMemcpy", "cuMemcpyAsync"}},
	{"modules load from images on kerfd; no files or linker on the client",
		[]string{"cuLink*", "cuModuleLoad"}},
	{"stream memory operations need the device to reach the program's memory",
		[]string{"cuStreamWaitValue*", "cuStreamWriteValue*", "cuStreamBatchMemOp", "cuFlushGPUDirectRDMAWrites"}},
	{"multi-device cooperative launches: each device of a lease is its own session",
		[]string{"cuLaunchCooperativeKernelMultiDevice"}},
	{"no persisting L2 (its size attribute is 0) and no pre-3.2 context API",
		[]string{"cuCtxDetach", "cuCtxResetPersistingL2Cache"}},
	{"thread block clusters are not offered: no cluster launch attribute, and the emulated device (compute capability 8.0) has none",
		[]string{"cuOccupancyMaxActiveClusters", "cuOccupancyMaxPotentialClusterSize"}},
	{"stream queries and attributes are not in the catalogue yet",
		[]string{"cuStreamGetPriority", "cuStreamGetFlags", "cuStreamGetCtx", "cuStreamCopyAttributes",
			"cuStreamGetAttribute", "cuStreamSetAttribute"}},
	{"a slice has no PCI location of its own to look devices up by",
		[]string{"cuDeviceGetByPCIBusId", "cuDeviceGetPCIBusId"}},
	{"no profiler on the client", []string{"cuProfiler*"}},
}

// absenceReason returns why name is deliberately absent, or "".
func absenceReason(name string) string {
	for _, g := range deliberatelyAbsent {
		for _, n := range g.names {
			if n == name || strings.HasSuffix(n, "*") && strings.HasPrefix(name, strings.TrimSuffix(n, "*")) {
				return g.reason
			}
		}
	}
	return ""
}

// TestRuntimeProcAddressRequests runs each runtime program with the shim
// recording every name cudart asks cuGetProcAddress for, and checks each
// is served or listed in deliberatelyAbsent with a reason.
func TestRuntimeProcAddressRequests(t *testing.T) {
	buildRuntimePrograms(t)
	k := startKerfd(t)
	b := k.bundle(t, "alice")
	trace := filepath.Join(t.TempDir(), "procs")
	t.Setenv(kerfenv.ProcTrace, trace)
	for _, link := range cudartLinks {
		for _, p := range rtPrograms {
			kerfRun(t, b, "unix", rtGPUs(p), rtSlice, p+"_"+link, fmt.Sprint(rtSlice))
		}
	}
	f, err := os.Open(trace)
	if err != nil {
		t.Fatalf("no trace of cuGetProcAddress requests: %v", err)
	}
	defer f.Close()
	served, missing := map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			t.Fatalf("trace line %q", sc.Text())
		}
		if fields[2] == "served" {
			served[fields[0]] = true
		} else {
			missing[fields[0]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(served) < 10 {
		t.Fatalf("only %d names served: the trace does not look like cudart's", len(served))
	}
	var unexplained []string
	for name := range missing {
		if absenceReason(name) == "" {
			unexplained = append(unexplained, name)
		}
	}
	sort.Strings(unexplained)
	if len(unexplained) > 0 {
		t.Errorf("cudart asked for %d entry points the shim neither serves nor lists as deliberately absent:\n%s",
			len(unexplained), strings.Join(unexplained, "\n"))
	}
	for _, g := range deliberatelyAbsent {
		for _, n := range g.names {
			if served[n] {
				t.Errorf("%s is listed as absent but the shim serves it", n)
			}
		}
	}
	t.Logf("cudart asked for %d names: %d served, %d deliberately absent", len(served)+len(missing), len(served), len(missing))
}
