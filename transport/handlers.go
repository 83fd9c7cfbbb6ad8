package transport

import (
	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// handler runs one catalogue call on a session. Made by handle or
// handleBulk from the call's generated decoder and the session method
// named after the call, it decodes the Call frame's payload into the
// call's argument struct, answers a sync call with a latched async error
// instead of running it, and otherwise runs the method and replies with
// or latches its result. A non-nil error ends the session.
type handler struct {
	exec func(ss *session, h wire.Header, c *abi.Call, p []byte) error
	// args returns the zero argument struct the handler decodes, for the
	// tests that hold the table against the catalogue.
	args func() any
}

// handlers is indexed by call ID: every catalogue call has one (the
// tests check), and a call without one is refused as unknown.
var handlers = [...]handler{
	abi.CallCtxSynchronize:          handle(wire.DecodeCtxSynchronizeArgs, (*session).ctxSynchronize),
	abi.CallDeviceGetAttribute:      handle(wire.DecodeDeviceGetAttributeArgs, (*session).deviceGetAttribute),
	abi.CallMemAlloc:                handle(wire.DecodeMemAllocArgs, (*session).memAlloc),
	abi.CallMemFree:                 handle(wire.DecodeMemFreeArgs, (*session).memFree),
	abi.CallMemGetInfo:              handle(wire.DecodeMemGetInfoArgs, (*session).memGetInfo),
	abi.CallMemcpyHtoD:              handleBulk(wire.DecodeMemcpyHtoDArgs, (*session).memcpyHtoD),
	abi.CallMemcpyHtoDAsync:         handleBulk(wire.DecodeMemcpyHtoDAsyncArgs, (*session).memcpyHtoDAsync),
	abi.CallMemcpyDtoH:              handleBulk(wire.DecodeMemcpyDtoHArgs, (*session).memcpyDtoH),
	abi.CallMemcpyDtoHAsync:         handleBulk(wire.DecodeMemcpyDtoHAsyncArgs, (*session).memcpyDtoHAsync),
	abi.CallMemcpyDtoD:              handle(wire.DecodeMemcpyDtoDArgs, (*session).memcpyDtoD),
	abi.CallMemcpyDtoDAsync:         handle(wire.DecodeMemcpyDtoDAsyncArgs, (*session).memcpyDtoDAsync),
	abi.CallMemset:                  handle(wire.DecodeMemsetD8Args, (*session).memsetD8),
	abi.CallMemsetAsync:             handle(wire.DecodeMemsetD8AsyncArgs, (*session).memsetD8Async),
	abi.CallModuleLoad:              handleBulk(wire.DecodeModuleLoadDataArgs, (*session).moduleLoadData),
	abi.CallModuleUnload:            handle(wire.DecodeModuleUnloadArgs, (*session).moduleUnload),
	abi.CallModuleGetFunction:       handle(wire.DecodeModuleGetFunctionArgs, (*session).moduleGetFunction),
	abi.CallModuleGetGlobal:         handle(wire.DecodeModuleGetGlobalArgs, (*session).moduleGetGlobal),
	abi.CallFuncGetAttribute:        handle(wire.DecodeFuncGetAttributeArgs, (*session).funcGetAttribute),
	abi.CallFuncGetParamLayout:      handle(wire.DecodeFuncGetParamInfoArgs, (*session).funcGetParamInfo),
	abi.CallLaunchKernel:            handle(wire.DecodeLaunchKernelArgs, (*session).launchKernel),
	abi.CallStreamCreate:            handle(wire.DecodeStreamCreateArgs, (*session).streamCreate),
	abi.CallStreamDestroy:           handle(wire.DecodeStreamDestroyArgs, (*session).streamDestroy),
	abi.CallStreamSynchronize:       handle(wire.DecodeStreamSynchronizeArgs, (*session).streamSynchronize),
	abi.CallStreamQuery:             handle(wire.DecodeStreamQueryArgs, (*session).streamQuery),
	abi.CallStreamWaitEvent:         handle(wire.DecodeStreamWaitEventArgs, (*session).streamWaitEvent),
	abi.CallEventCreate:             handle(wire.DecodeEventCreateArgs, (*session).eventCreate),
	abi.CallEventRecord:             handle(wire.DecodeEventRecordArgs, (*session).eventRecord),
	abi.CallEventQuery:              handle(wire.DecodeEventQueryArgs, (*session).eventQuery),
	abi.CallEventSynchronize:        handle(wire.DecodeEventSynchronizeArgs, (*session).eventSynchronize),
	abi.CallEventElapsedTime:        handle(wire.DecodeEventElapsedTimeArgs, (*session).eventElapsedTime),
	abi.CallEventDestroy:            handle(wire.DecodeEventDestroyArgs, (*session).eventDestroy),
	abi.CallFuncSetAttribute:        handle(wire.DecodeFuncSetAttributeArgs, (*session).funcSetAttribute),
	abi.CallMemGetAddressRange:      handle(wire.DecodeMemGetAddressRangeArgs, (*session).memGetAddressRange),
	abi.CallCtxSetLimit:             handle(wire.DecodeCtxSetLimitArgs, (*session).ctxSetLimit),
	abi.CallCtxReset:                handle(wire.DecodeDevicePrimaryCtxResetArgs, (*session).ctxReset),
	abi.CallTexObjectCreate:         handle(wire.DecodeTexObjectCreateArgs, (*session).texObjectCreate),
	abi.CallTexObjectDestroy:        handle(wire.DecodeTexObjectDestroyArgs, (*session).texObjectDestroy),
	abi.CallLaunchCooperativeKernel: handle(wire.DecodeLaunchCooperativeKernelArgs, (*session).launchCooperativeKernel),

	abi.CallMemGetAllocationGranularity: handle(wire.DecodeMemGetAllocationGranularityArgs, (*session).memGetAllocationGranularity),
	abi.CallMemAddressReserve:           handle(wire.DecodeMemAddressReserveArgs, (*session).memAddressReserve),
	abi.CallMemAddressFree:              handle(wire.DecodeMemAddressFreeArgs, (*session).memAddressFree),
	abi.CallMemCreate:                   handle(wire.DecodeMemCreateArgs, (*session).memCreate),
	abi.CallMemRelease:                  handle(wire.DecodeMemReleaseArgs, (*session).memRelease),
	abi.CallMemMap:                      handle(wire.DecodeMemMapArgs, (*session).memMap),
	abi.CallMemUnmap:                    handle(wire.DecodeMemUnmapArgs, (*session).memUnmap),
	abi.CallMemSetAccess:                handle(wire.DecodeMemSetAccessArgs, (*session).memSetAccess),
	abi.CallMemGetAccess:                handle(wire.DecodeMemGetAccessArgs, (*session).memGetAccess),
}

// handlerFor returns the handler of call id, or nil.
func handlerFor(id abi.CallID) *handler {
	if int(id) >= len(handlers) || handlers[id].exec == nil {
		return nil
	}
	return &handlers[id]
}

// handle makes the handler of a call without bulk data from its decoder
// and its method, which returns the call's CUDA result.
func handle[A any](decode func([]byte) (A, error), run func(*session, A) abi.Result) handler {
	return handler{
		exec: func(ss *session, h wire.Header, c *abi.Call, p []byte) error {
			a, err := decode(p)
			if err != nil {
				return ss.refuseArgs(h, c, err)
			}
			if done, err := ss.replyLatched(h, c, 0); done {
				return err
			}
			ss.res.Reset()
			return ss.finish(h, c, wantsReply(h), run(ss, a))
		},
		args: func() any { var a A; return a },
	}
}

// handleBulk makes the handler of a call with bulk data from its decoder
// and its method, which moves the data and returns the call's CUDA
// result, or an error that ends the session.
func handleBulk[A interface{ BulkSize() uint64 }](decode func([]byte) (A, error), run func(*session, wire.Header, A) (abi.Result, error)) handler {
	return handler{
		exec: func(ss *session, h wire.Header, c *abi.Call, p []byte) error {
			a, err := decode(p)
			if err != nil {
				return ss.refuseArgs(h, c, err)
			}
			if done, err := ss.replyLatched(h, c, a.BulkSize()); done {
				return err
			}
			ss.res.Reset()
			code, err := run(ss, h, a)
			if err != nil {
				return err
			}
			return ss.finish(h, c, wantsReply(h), code)
		},
		args: func() any { var a A; return a },
	}
}

func wantsReply(h wire.Header) bool { return h.Flags&wire.WantReply != 0 }

// refuseArgs answers call c, whose arguments did not decode.
func (ss *session) refuseArgs(h wire.Header, c *abi.Call, err error) error {
	// The size of a bulk transfer is unknown, so the stream cannot be
	// resynchronised: the call is malformed beyond repair.
	if c.Bulk == abi.BulkIn {
		return protoErrorf("%s: %v", c.Name, err)
	}
	return ss.finish(h, c, wantsReply(h), abi.ErrInvalidValue)
}

// replyLatched answers a sync call with the error an earlier async call
// latched, if there is one, instead of running it; it reads and drops the
// call's bulkIn bytes of incoming data first. It reports whether it
// answered.
func (ss *session) replyLatched(h wire.Header, c *abi.Call, bulkIn uint64) (bool, error) {
	if !wantsReply(h) || ss.latched == abi.Success {
		return false, nil
	}
	code := ss.latched
	ss.latched = abi.Success
	if c.Bulk == abi.BulkIn {
		if _, err := ss.recvBulk(h, bulkIn, nil); err != nil {
			return true, err
		}
	}
	return true, ss.reply(h, c, code)
}
