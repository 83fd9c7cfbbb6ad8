package main

/*
#include <stdio.h>

static void kerf_write_stdout(const void *p, size_t n) {
	fwrite(p, 1, n, stdout);
	fflush(stdout);
}
*/
import "C"

import "unsafe"

// stdoutPrinter writes the device printf output kerfd sends through the
// program's C stdout, as NVIDIA's driver does, so that it keeps its
// place among the program's own printf output.
type stdoutPrinter struct{}

func (stdoutPrinter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		C.kerf_write_stdout(unsafe.Pointer(&p[0]), C.size_t(len(p)))
	}
	return len(p), nil
}
