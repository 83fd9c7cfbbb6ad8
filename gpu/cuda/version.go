package cuda

import "fmt"

// MinDriverVersion is the oldest driver Kerf accepts, as cuDriverGetVersion
// reports it: CUDA 11.0. Every entry point the backend needs is older
// (a test checks), except cuFuncGetParamInfo (CUDA 12.4), without which
// kernel parameter layouts are read from the module image (layout.go).
const MinDriverVersion = 11000

// versionString renders a cuDriverGetVersion value: 12040 is "12.4".
func versionString(v int) string {
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}

// checkDriverVersion refuses drivers older than MinDriverVersion.
func checkDriverVersion(v int) error {
	if v < MinDriverVersion {
		return fmt.Errorf("%w: the NVIDIA driver supports CUDA %s (cuDriverGetVersion %d); Kerf needs CUDA %s (%d) or newer: update the driver",
			ErrDriverTooOld, versionString(v), v, versionString(MinDriverVersion), MinDriverVersion)
	}
	return nil
}
