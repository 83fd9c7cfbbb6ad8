package appliance

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as kerfd's worker executable.
func TestMain(m *testing.M) {
	if IsWorker() {
		os.Exit(RunWorker())
	}
	os.Exit(m.Run())
}
