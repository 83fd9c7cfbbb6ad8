package main

// The shim is also the tenant's libnvidia-ml.so.1: the NVML functions of
// intercept/nvml are exported beside the driver API, and bin/libnvidia-ml.so.1
// links to this library, so a program that loads both loads one copy.
import _ "github.com/kerf-edge/kerf/intercept/nvml"
