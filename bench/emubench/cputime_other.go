//go:build !unix

package emubench

import "time"

// cpuTime stands in for the process's CPU time where the platform does
// not report it: wall time.
func cpuTime() time.Duration { return time.Duration(time.Now().UnixNano()) }
