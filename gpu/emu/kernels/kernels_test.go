package kernels

import (
	"os"
	"strings"
	"testing"
)

func TestEmbedded(t *testing.T) {
	srcs, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range srcs {
		if name, ok := strings.CutSuffix(e.Name(), ".cu"); ok {
			n++
			if p := PTX(name); !strings.Contains(string(p), ".entry") {
				t.Errorf("%s.cu has no embedded PTX with an entry", name)
			}
		}
	}
	if n == 0 || len(Names()) != n {
		t.Fatalf("%d sources, %d PTX files: %v", n, len(Names()), Names())
	}
	if PTX("matmul.ptx") == nil || PTX("nope") != nil {
		t.Fatal("PTX lookup")
	}
}
