package emu

import "github.com/kerf-edge/kerf/gpu/emu/ptx"

// loadPTX binds emu to the ptx interpreter.
func loadPTX(src []byte) (program, error) {
	m, err := ptx.Load(src)
	if err != nil {
		return nil, err
	}
	return ptxProgram{m}, nil
}

type ptxProgram struct{ m *ptx.Module }

func (p ptxProgram) kernel(name string) (kernel, error) {
	k, err := p.m.Kernel(name)
	if err != nil {
		return nil, err
	}
	return ptxKernel{k}, nil
}

func (p ptxProgram) globals() []ptx.Global { return p.m.Globals() }

type ptxKernel struct{ k *ptx.Kernel }

func (k ptxKernel) params() []ptx.Param     { return k.k.Params }
func (k ptxKernel) run(l *ptx.Launch) error { return k.k.Run(l) }

func (k ptxKernel) info() kernelInfo {
	return kernelInfo{shared: k.k.SharedSize, local: k.k.LocalSize, regs: k.k.Regs, paramSize: k.k.ParamSize, heap: k.k.UsesHeap}
}
