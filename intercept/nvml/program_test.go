package nvml

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/intercept/launcher"
)

// The program tests build the shim as `make build` does, with
// libnvidia-ml.so.1 linking to it, compile testdata/nvml_query.c against
// both names, and run it through kerf run.

var (
	buildOnce sync.Once
	binDir    string // the shim, its NVML name and the program
	buildErr  error
)

func built(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "kerf-nvml-")
		if buildErr == nil {
			buildErr = build(binDir)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func build(dir string) error {
	// Not with -race: ThreadSanitizer cannot map its shadow memory inside
	// a shared library.
	out, err := exec.Command("go", "build", "-buildmode=c-shared", "-o", filepath.Join(dir, "libcuda.so.1"), "github.com/kerf-edge/kerf/intercept").CombinedOutput()
	if err != nil {
		return fmt.Errorf("building the shim: %v\n%s", err, out)
	}
	if err := os.Symlink("libcuda.so.1", filepath.Join(dir, "libnvidia-ml.so.1")); err != nil {
		return err
	}
	out, err = exec.Command("gcc", "-O1", "-Wall", "-Werror", "-I../../abi/include", "-I../testdata", "-Itestdata",
		"-o", filepath.Join(dir, "nvml_query"), filepath.Join("testdata", "nvml_query.c"),
		"-L"+dir, "-l:libnvidia-ml.so.1", "-l:libcuda.so.1", "-ldl").CombinedOutput()
	if err != nil {
		return fmt.Errorf("gcc nvml_query: %v\n%s", err, out)
	}
	return nil
}

// TestProgramThroughKerfRun runs the C program on a quarter GPU over both
// paths: NVML's memory total is the slice's, the process list holds the
// program, utilization shows its kernels, and an unimplemented call is
// NVML_ERROR_NOT_SUPPORTED.
func TestProgramThroughKerfRun(t *testing.T) {
	dir := built(t)
	k := startKerfd(t)
	matmul, err := filepath.Abs(filepath.Join("..", "..", "gpu", "emu", "kernels", "matmul.ptx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, via := range []string{"unix", "quic"} {
		t.Run(via, func(t *testing.T) {
			bundle := k.bundle(t, "quincy-"+via)
			// The slice a quarter GPU gets, as kerfd grants it.
			l := k.lease(t, readToken(t, bundle))
			quota := l.Slices[0].Memory
			l.Close()

			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			var out bytes.Buffer
			o := launcher.Options{GPUs: 1, Fraction: 0.25, Bundle: bundle, Via: via, Timeout: 30 * time.Second, ShimDir: dir,
				Stdout: &out, Stderr: &out}
			if via == "quic" {
				o.Server = k.a.QUICAddr()
			}
			code, err := launcher.Run(ctx, o, []string{filepath.Join(dir, "nvml_query"), matmul})
			if err != nil || code != 0 {
				t.Fatalf("kerf run nvml_query over %s: exit %d, %v\n%s", via, code, err, out.String())
			}
			t.Log(strings.TrimSpace(out.String()))
			got := map[string]string{}
			for _, m := range regexp.MustCompile(`(\w+)=(\S+)`).FindAllStringSubmatch(out.String(), -1) {
				got[m[1]] = m[2]
			}
			if got["devices"] != "1" || got["total"] != fmt.Sprint(quota) || got["temperature"] != "3" {
				t.Fatalf("want 1 device of %d bytes and NOT_SUPPORTED (3) for the temperature; got %v", quota, got)
			}
		})
	}
}

// TestLibraryDefinesEveryNVMLSymbol reads the built library: every NVML
// function the package answers or stubs is defined, and nothing is left
// for the loader to find elsewhere but the C library's versioned symbols.
func TestLibraryDefinesEveryNVMLSymbol(t *testing.T) {
	dir := built(t)
	f, err := elf.Open(filepath.Join(dir, "libnvidia-ml.so.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, s := range syms {
		if s.Section == elf.SHN_UNDEF {
			if s.Library == "" && elf.ST_BIND(s.Info) != elf.STB_WEAK {
				t.Errorf("%s is undefined and names no library", s.Name)
			}
			continue
		}
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			defined[s.Name] = true
		}
	}
	stubs, err := os.ReadFile("unsupported_gen.c")
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`(?m)^int (nvml\w+)\(void\)`).FindAllStringSubmatch(string(stubs), -1)
	for _, p := range []string{"exports_cgo.go"} {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, regexp.MustCompile(`(?m)^//export (nvml\w+)$`).FindAllStringSubmatch(string(src), -1)...)
	}
	if len(want) < 300 {
		t.Fatalf("only %d NVML functions listed", len(want))
	}
	for _, m := range want {
		if !defined[m[1]] {
			t.Errorf("%s is not defined", m[1])
		}
	}
	for _, n := range []string{"nvmlInit_v2", "nvmlDeviceGetTemperature", "nvmlDeviceGetPowerUsage", "cuInit"} {
		if !defined[n] {
			t.Errorf("%s is not defined", n)
		}
	}
}
