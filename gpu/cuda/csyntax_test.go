package cuda

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestValidationProgramsCompile checks that the GPU validation suite's C
// program (testdata/kerftest.c, run by scripts/gpu-test.sh on a GPU
// machine) compiles against our own driver-API header, so syntax and type
// errors show up here rather than on a GPU machine. It does not run it.
// headerDir holds kerf_cuda.h, which the fake driver and the validation
// program are compiled against.
var headerDir = filepath.Join("..", "..", "abi", "include")

func TestValidationProgramsCompile(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc")
	}
	for _, args := range [][]string{
		{"-std=c11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-I" + headerDir, "testdata/kerftest.c"},
		{"-x", "c++", "-Wall", "-Werror", "-fsyntax-only", filepath.Join(headerDir, "kerf_cuda.h")},
		{"-x", "c++", "-Wall", "-Werror", "-fsyntax-only", "-DKERF_CUDA_ALL_VERSIONS", filepath.Join(headerDir, "kerf_cuda.h")},
	} {
		if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
			t.Errorf("gcc %v: %v\n%s", args, err, out)
		}
	}
}
