package gputest

import (
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// Every attribute a device of any generation answers is answered; the
// dynamic shared memory limit rises to the opt-in maximum less the static
// shared memory, and a launch then gets that much; the carveout takes a
// percentage or -1; nothing else is settable.
func (s *suite) testFunctionAttributes(t *testing.T) {
	k := s.needKernels(t)
	c, _ := s.openLimited(t, s.newBackend(t))
	m := must[gpu.Module](t, "ModuleLoad")(c.ModuleLoad(k.Ok.Image))
	f := must[gpu.Function](t, "Function")(m.Function(k.Ok.Name))
	for attr := abi.FuncAttrMaxThreadsPerBlock; attr <= abi.FuncAttrPreferredCarveout; attr++ {
		if _, err := f.Attribute(attr); err != nil {
			t.Errorf("Attribute %d: %v", attr, err)
		}
	}
	optin := must[int32](t, "device Attribute")(c.Attribute(abi.AttrMaxSharedMemoryPerBlockOptin))
	static := must[int32](t, "static shared")(f.Attribute(abi.FuncAttrSharedSizeBytes))
	dflt := must[int32](t, "max dynamic shared")(f.Attribute(abi.FuncAttrMaxDynamicShared))
	most := optin - static
	if dflt > most {
		t.Errorf("default dynamic shared limit %d exceeds opt-in %d less static %d", dflt, optin, static)
	}
	cfg, params := k.Ok.Launch(t, c)
	cfg.SharedBytes = uint32(most)
	if most > dflt {
		wantCode(t, "Launch above the default dynamic shared limit", c.Launch(f, cfg, params, nil), abi.ErrInvalidValue)
	}
	wantCode(t, "SetAttribute above the opt-in maximum", f.SetAttribute(abi.FuncAttrMaxDynamicShared, most+1), abi.ErrInvalidValue)
	wantCode(t, "SetAttribute of a negative limit", f.SetAttribute(abi.FuncAttrMaxDynamicShared, -1), abi.ErrInvalidValue)
	ok(t, "SetAttribute of the opt-in maximum", f.SetAttribute(abi.FuncAttrMaxDynamicShared, most))
	if got := must[int32](t, "max dynamic shared")(f.Attribute(abi.FuncAttrMaxDynamicShared)); got != most {
		t.Errorf("max dynamic shared %d after setting %d", got, most)
	}
	ok(t, "Launch with the raised dynamic shared memory", c.Launch(f, cfg, params, nil))
	ok(t, "Synchronize", c.Synchronize())

	for _, v := range []int32{-2, 101} {
		wantCode(t, "SetAttribute of a bad carveout", f.SetAttribute(abi.FuncAttrPreferredCarveout, v), abi.ErrInvalidValue)
	}
	ok(t, "SetAttribute of a carveout", f.SetAttribute(abi.FuncAttrPreferredCarveout, 50))
	if got := must[int32](t, "carveout")(f.Attribute(abi.FuncAttrPreferredCarveout)); got != 50 {
		t.Errorf("carveout %d after setting 50", got)
	}
	wantCode(t, "SetAttribute of the register count", f.SetAttribute(abi.FuncAttrNumRegs, 1), abi.ErrInvalidValue)
	ok(t, "Unload", m.Unload())
	wantCode(t, "SetAttribute of an unloaded module's function", f.SetAttribute(abi.FuncAttrMaxDynamicShared, 0), gone)
}
