package appliance

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as kerfd's worker executable, and
// as a tenant program that tests kill (workerexit_test.go).
func TestMain(m *testing.M) {
	if IsWorker() {
		os.Exit(RunWorker())
	}
	if os.Getenv(syscallProbeEnv) != "" {
		os.Exit(runSyscallProbe())
	}
	if os.Getenv(capProbeEnv) != "" {
		os.Exit(runCapProbe())
	}
	if path := os.Getenv(probeEnv); path != "" {
		os.Exit(runReadProbe(path))
	}
	if spec := os.Getenv(testTenantEnv); spec != "" {
		os.Exit(runTestTenant(spec))
	}
	os.Exit(m.Run())
}
