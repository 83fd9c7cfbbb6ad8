package abi

// JIT options (CUjit_option) that Kerf reads from cuModuleLoadDataEx and
// cuLibraryLoadData. The values are the driver's ABI; the names are our own.
// A log buffer option's value is a char *; its size option's value is the
// buffer's size, passed in the pointer-sized slot itself, and on return the
// number of bytes of text written, without the terminating NUL.
const (
	JITInfoLogBuffer           = 3 // CU_JIT_INFO_LOG_BUFFER
	JITInfoLogBufferSizeBytes  = 4 // CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES
	JITErrorLogBuffer          = 5 // CU_JIT_ERROR_LOG_BUFFER
	JITErrorLogBufferSizeBytes = 6 // CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES
)
