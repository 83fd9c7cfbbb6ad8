package slicer

import "time"

// The messages below are what kerfd and a tenant's worker exchange over
// the worker's control socket (JSON lines, one Msg per line) for
// slicing. The socket and its framing belong to appliance; slicer only
// fixes the vocabulary so both sides agree.
//
// kerfd → worker:
//
//	{"op":"setMemLimit","seq":7,"slice":"g0.s3","bytes":2147483648}
//	    call gpu.Context.SetMemLimit; answer ack (err set if refused,
//	    e.g. the tenant now uses more than bytes)
//	{"op":"setShare","seq":8,"slice":"g0.s3","share":0.25}
//	    informational (the Arbiter in kerfd enforces it); answer ack
//	{"op":"grant","grant":{"id":41,"client":"g0.s3","budget":2000000,"issued":"…"}}
//	    the answer to acquire: launch up to budget of GPU time
//	{"op":"reclaimed","reason":"lease l9 of alice was idle for 10m0s …"}
//	    fail every further call with that reason and end the session
//
// worker → kerfd:
//
//	{"op":"report","memUsed":…,"calls":…,"busyNs":…} every 250 ms (today's
//	    workerReport plus op and busyNs, the context's metered GPU time)
//	{"op":"acquire","estimateNs":500000}   before launching without a grant
//	{"op":"used","grantId":41,"usedNs":2210000}   the grant's GPU time, sent
//	    when the budget is spent or the tenant's queue drains
//	{"op":"ack","seq":7,"err":""}          answer to setMemLimit/setShare
type Msg struct {
	Op    string  `json:"op"`
	Seq   uint64  `json:"seq,omitempty"`
	Slice SliceID `json:"slice,omitempty"`
	Bytes uint64  `json:"bytes,omitempty"`
	Share float64 `json:"share,omitempty"`
	Grant *Grant  `json:"grant,omitempty"`
	// GrantID names the grant a used message returns.
	GrantID  uint64        `json:"grantId,omitempty"`
	Estimate time.Duration `json:"estimateNs,omitempty"`
	Used     time.Duration `json:"usedNs,omitempty"`
	MemUsed  uint64        `json:"memUsed,omitempty"`
	Calls    uint64        `json:"calls,omitempty"`
	Busy     time.Duration `json:"busyNs,omitempty"`
	Err      string        `json:"err,omitempty"`
	Reason   string        `json:"reason,omitempty"`
}

// Msg ops.
const (
	OpSetMemLimit = "setMemLimit"
	OpSetShare    = "setShare"
	OpGrant       = "grant"
	OpReclaimed   = "reclaimed"
	OpReport      = "report"
	OpAcquire     = "acquire"
	OpUsed        = "used"
	OpAck         = "ack"
)

// ControlFuncs adapts two functions to Control.
type ControlFuncs struct {
	MemLimit func(slice SliceID, bytes uint64) error
	Share    func(slice SliceID, share float64) error
}

// SetMemLimit calls f.MemLimit, if set.
func (f ControlFuncs) SetMemLimit(slice SliceID, bytes uint64) error {
	if f.MemLimit == nil {
		return nil
	}
	return f.MemLimit(slice, bytes)
}

// SetShare calls f.Share, if set.
func (f ControlFuncs) SetShare(slice SliceID, share float64) error {
	if f.Share == nil {
		return nil
	}
	return f.Share(slice, share)
}
