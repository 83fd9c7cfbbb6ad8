package abi

// Dim3 is a grid or block shape.
type Dim3 struct{ X, Y, Z uint32 }

// LaunchConfig is a kernel launch's shape.
type LaunchConfig struct {
	Grid        Dim3
	Block       Dim3
	SharedBytes uint32
}

// ParamInfo is one kernel parameter's place in the packed parameter
// buffer, as cuFuncGetParamInfo reports it.
type ParamInfo struct {
	Offset uint32
	Size   uint32
}
