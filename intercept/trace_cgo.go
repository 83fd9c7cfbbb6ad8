package main

/*
#include "shim.h"
*/
import "C"

import "unsafe"

// cstr traces a C string argument: at most maxTraceString bytes and one
// more, which appendStr marks as cut.
func (l *traceLine) cstr(name string, p *C.char) {
	if p == nil {
		l.str(name, "", false)
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(p)), maxTraceString+1)
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	l.str(name, string(b), true)
}
