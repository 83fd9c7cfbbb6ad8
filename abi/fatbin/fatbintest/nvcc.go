package fatbintest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ScaleKernel is CUDA C for kerf_scale(x, a, n): x[i] *= a for i < n.
const ScaleKernel = `extern "C" __global__ void kerf_scale(float *x, float a, int n) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n) x[i] *= a;
}
`

// Nvcc compiles CUDA C src with `nvcc -fatbin` for each gencode (such as
// "arch=compute_80,code=compute_80") and returns the .fatbin it wrote,
// built at test time and never kept. It skips the test when nvcc is not
// installed.
func Nvcc(t *testing.T, src string, gencode ...string) []byte {
	t.Helper()
	nvcc, err := exec.LookPath("nvcc")
	if err != nil {
		t.Skip("nvcc is not installed: no real fatbin to check against")
	}
	dir := t.TempDir()
	cu, out := filepath.Join(dir, "kernel.cu"), filepath.Join(dir, "kernel.fatbin")
	if err := os.WriteFile(cu, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-fatbin", "-o", out, cu}
	for _, g := range gencode {
		args = append(args, "-gencode", g)
	}
	if _, err := exec.LookPath("clang-14"); err == nil {
		args = append([]string{"-ccbin", "clang-14"}, args...) // the host compiler nvcc 11.8 accepts here
	}
	if b, err := exec.Command(nvcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("nvcc %v: %v\n%s", args, err, b)
	}
	img, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
