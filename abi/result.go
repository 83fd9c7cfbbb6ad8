package abi

import (
	"fmt"
	"strings"
)

// Result is a CUDA driver-API result code (CUresult). The numeric values
// are the driver's ABI; the declarations are our own.
type Result uint32

// Result codes used by Kerf. Values mirror the CUDA driver ABI.
const (
	Success                  Result = 0
	ErrInvalidValue          Result = 1
	ErrOutOfMemory           Result = 2
	ErrNotInitialized        Result = 3
	ErrDeinitialized         Result = 4
	ErrDeviceUnavailable     Result = 46
	ErrNoDevice              Result = 100
	ErrInvalidDevice         Result = 101
	ErrInvalidImage          Result = 200
	ErrInvalidContext        Result = 201
	ErrNoBinaryForGPU        Result = 209
	ErrUnsupportedLimit      Result = 215
	ErrInvalidPTX            Result = 218
	ErrUnsupportedPTXVersion Result = 222
	ErrInvalidSource         Result = 300
	ErrOperatingSystem       Result = 304
	ErrPeerAccessUnsupported Result = 217
	ErrInvalidHandle         Result = 400
	ErrIllegalState          Result = 401
	ErrNotFound              Result = 500
	ErrNotReady              Result = 600
	ErrIllegalAddress        Result = 700
	ErrLaunchOutOfResources  Result = 701
	ErrLaunchTimeout         Result = 702
	ErrIllegalInstruction    Result = 715
	ErrMisalignedAddress     Result = 716
	ErrPeerAccessNotEnabled  Result = 705
	ErrLaunchFailed          Result = 719
	ErrCooperativeTooLarge   Result = 720
	// ErrGraphExecUpdateFailure: an executable graph's update broke a
	// rule of updates (a changed topology or node type).
	ErrGraphExecUpdateFailure Result = 910
	ErrNotPermitted           Result = 800
	ErrNotSupported           Result = 801
	ErrSystemNotReady         Result = 802
	ErrSystemDriverMismatch   Result = 803
	ErrUnknown                Result = 999

	// Execution affinity (CUDA 11.4 on).
	ErrUnsupportedExecAffinity = Result(224)

	// Stream capture (CUDA 10.0 on).
	ErrHostMemoryAlreadyRegistered = Result(712)
	ErrHostMemoryNotRegistered     = Result(713)

	ErrStreamCaptureUnsupported = Result(900)
	ErrStreamCaptureInvalidated = Result(901)
	ErrStreamCaptureMerge       = Result(902)
	ErrStreamCaptureUnmatched   = Result(903)
	ErrStreamCaptureUnjoined    = Result(904)
	ErrStreamCaptureIsolation   = Result(905)
	ErrStreamCaptureImplicit    = Result(906)
	ErrCapturedEvent            = Result(907)
	ErrStreamCaptureWrongThread = Result(908)
)

var resultNames = map[Result][2]string{
	Success:                   {"CUDA_SUCCESS", "no error"},
	ErrInvalidValue:           {"CUDA_ERROR_INVALID_VALUE", "invalid argument"},
	ErrOutOfMemory:            {"CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
	ErrNotInitialized:         {"CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
	ErrDeinitialized:          {"CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
	ErrDeviceUnavailable:      {"CUDA_ERROR_DEVICE_UNAVAILABLE", "CUDA-capable device(s) is/are busy or unavailable"},
	ErrNoDevice:               {"CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
	ErrInvalidDevice:          {"CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
	ErrInvalidImage:           {"CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
	ErrInvalidContext:         {"CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
	ErrNoBinaryForGPU:         {"CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"},
	ErrUnsupportedLimit:       {"CUDA_ERROR_UNSUPPORTED_LIMIT", "limit is not supported on this architecture"},
	ErrInvalidPTX:             {"CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
	ErrUnsupportedPTXVersion:  {"CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "the provided PTX was compiled with an unsupported toolchain"},
	ErrInvalidSource:          {"CUDA_ERROR_INVALID_SOURCE", "device kernel image is invalid"},
	ErrOperatingSystem:        {"CUDA_ERROR_OPERATING_SYSTEM", "OS call failed or operation not supported on this OS"},
	ErrPeerAccessUnsupported:  {"CUDA_ERROR_PEER_ACCESS_UNSUPPORTED", "peer access is not supported across the given devices"},
	ErrInvalidHandle:          {"CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
	ErrIllegalState:           {"CUDA_ERROR_ILLEGAL_STATE", "the operation cannot be performed in the present state"},
	ErrNotFound:               {"CUDA_ERROR_NOT_FOUND", "named symbol not found"},
	ErrNotReady:               {"CUDA_ERROR_NOT_READY", "device not ready"},
	ErrIllegalAddress:         {"CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
	ErrLaunchOutOfResources:   {"CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
	ErrLaunchTimeout:          {"CUDA_ERROR_LAUNCH_TIMEOUT", "the launch timed out and was terminated"},
	ErrIllegalInstruction:     {"CUDA_ERROR_ILLEGAL_INSTRUCTION", "an illegal instruction was encountered"},
	ErrMisalignedAddress:      {"CUDA_ERROR_MISALIGNED_ADDRESS", "misaligned address"},
	ErrPeerAccessNotEnabled:   {"CUDA_ERROR_PEER_ACCESS_NOT_ENABLED", "peer access has not been enabled"},
	ErrLaunchFailed:           {"CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
	ErrCooperativeTooLarge:    {"CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE", "too many blocks in cooperative launch"},
	ErrGraphExecUpdateFailure: {"CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE", "the graph update was not performed because it included changes which violated constraints specific to instantiated graph update"},
	ErrNotPermitted:           {"CUDA_ERROR_NOT_PERMITTED", "operation not permitted"},
	ErrNotSupported:           {"CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
	ErrSystemNotReady:         {"CUDA_ERROR_SYSTEM_NOT_READY", "system not yet initialized"},
	ErrSystemDriverMismatch:   {"CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", "system has unsupported display driver / cuda driver combination"},
	ErrUnknown:                {"CUDA_ERROR_UNKNOWN", "unknown error"},

	ErrUnsupportedExecAffinity:     {"CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY", "the provided execution affinity is not supported by the device"},
	ErrHostMemoryAlreadyRegistered: {"CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED", "part or all of the requested memory range is already mapped"},
	ErrHostMemoryNotRegistered:     {"CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED", "pointer does not correspond to a registered memory region"},

	ErrStreamCaptureUnsupported: {"CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", "operation not permitted when stream is capturing"},
	ErrStreamCaptureInvalidated: {"CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", "operation failed due to a previous error during capture"},
	ErrStreamCaptureMerge:       {"CUDA_ERROR_STREAM_CAPTURE_MERGE", "operation would result in a merge of separate capture sequences"},
	ErrStreamCaptureUnmatched:   {"CUDA_ERROR_STREAM_CAPTURE_UNMATCHED", "capture was not ended in the same stream as it began"},
	ErrStreamCaptureUnjoined:    {"CUDA_ERROR_STREAM_CAPTURE_UNJOINED", "capturing stream has unjoined work"},
	ErrStreamCaptureIsolation:   {"CUDA_ERROR_STREAM_CAPTURE_ISOLATION", "dependency created on uncaptured work in another stream"},
	ErrStreamCaptureImplicit:    {"CUDA_ERROR_STREAM_CAPTURE_IMPLICIT", "operation would make the legacy stream depend on a capturing blocking stream"},
	ErrCapturedEvent:            {"CUDA_ERROR_CAPTURED_EVENT", "operation not permitted on an event last recorded in a capturing stream"},
	ErrStreamCaptureWrongThread: {"CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD", "attempt to terminate a thread-local capture sequence from another thread"},
}

// Name returns the CUDA name of r, as cuGetErrorName does.
func (r Result) Name() string {
	if n, ok := resultNames[r]; ok {
		return n[0]
	}
	return fmt.Sprintf("CUDA_ERROR_%d", uint32(r))
}

// Description returns the CUDA description of r, as cuGetErrorString does.
func (r Result) Description() string {
	if n, ok := resultNames[r]; ok {
		return n[1]
	}
	return "unrecognized error code"
}

// Known reports whether r is one of the codes declared above.
func (r Result) Known() bool { _, ok := resultNames[r]; return ok }

func (r Result) String() string { return r.Name() }

// MaxErrorText bounds the text of an error that crosses the wire.
const MaxErrorText = 4096

// Error is a Result with context. It is the error type that crosses the
// wire: the code travels, and from protocol version 3 on so does the
// message of a sync call's error, cut to MaxErrorText bytes.
type Error struct {
	Code Result
	Msg  string
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return e.Code.Name()
	}
	return e.Code.Name() + ": " + e.Msg
}

// Message is err's text without the result name that its *Error (or bare
// Result) puts in front: what to send or print beside that code, so that
// the name is not said twice. A code without a message gives its
// description.
func Message(err error) string {
	text := err.Error()
	for e := err; e != nil; {
		switch v := e.(type) {
		case *Error:
			msg := v.Msg
			if msg == "" {
				msg = v.Code.Description()
			}
			return strings.Replace(text, v.Error(), msg, 1)
		case Result:
			return strings.Replace(text, v.Name(), v.Description(), 1)
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return text
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code Result, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// ResultOf extracts the CUDA result from err: Success for nil, the code of
// an *Error (or a Result) anywhere in the chain, ErrUnknown otherwise.
func ResultOf(err error) Result {
	if err == nil {
		return Success // inlined: the common case
	}
	return resultOf(err)
}

func resultOf(err error) Result {
	for e := err; e != nil; {
		switch v := e.(type) {
		case *Error:
			return v.Code
		case Result:
			return v
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return ErrUnknown
}

// Error makes a bare Result usable as an error.
func (r Result) Error() string { return r.Name() }
