package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// ringHalf names one direction of a shared-memory ring.
type ringHalf int

const (
	ringUp   ringHalf = iota // client → server (host-to-device)
	ringDown                 // server → client (device-to-host)
)

// Default ring geometry: per direction, shmSlots slots of shmSlotSize.
const (
	shmSlots     = 8
	shmSlotSize  = 1 << 20
	shmHeader    = 4096
	shmStateSize = 64 // one cache line per slot state
	// shmWait bounds how long a producer waits for a free slot before the
	// session is declared dead.
	shmWait = 30 * time.Second
)

// shmRing is the local path's bulk channel: a memfd created by the server,
// mapped by both ends. Each direction has slots whose state word (in the
// header) is 0 when the producer may fill it and 1 while the consumer
// owns it. The frames on the stream carry only (slot, length). After the
// slots comes the call ring (callring.go), which carries the client's
// frames themselves from protocol version 2 on.
//
// The server creates the memfd and seals its size, so a tenant cannot
// shrink the mapping under kerfd (which would fault it).
type shmRing struct {
	mem      []byte
	slots    int
	slotSize int
	next     [2]int // producer's next slot, per half
	ringOff  int    // offset of the call ring's data; 0: none mapped
}

// shmSize is the memfd size for a geometry: the header page, both halves'
// slots and, after them, the call ring.
func shmSize(slots, slotSize int, callRing bool) int {
	size := shmHeader + 2*slots*slotSize
	if callRing {
		size += callRingSize
	}
	return size
}

// newShmRing creates, seals and maps a ring; the returned fd is for the
// peer and must be closed by the caller once sent.
func newShmRing(slots, slotSize int) (*shmRing, int, error) {
	if err := checkRingGeometry(slots); err != nil {
		return nil, -1, err
	}
	size := shmSize(slots, slotSize, true)
	fd, err := unix.MemfdCreate("kerf-shm", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, -1, fmt.Errorf("memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, -1, fmt.Errorf("ftruncate shm: %w", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		unix.Close(fd)
		return nil, -1, fmt.Errorf("sealing shm: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, -1, fmt.Errorf("mmap shm: %w", err)
	}
	return &shmRing{mem: mem, slots: slots, slotSize: slotSize, ringOff: shmSize(slots, slotSize, false)}, fd, nil
}

// mapShmRing maps a ring received from the server, checking that the
// memfd is sealed against shrinking and large enough for the geometry;
// callRing maps the call ring too (protocol version 2 on).
func mapShmRing(fd, slots, slotSize int, callRing bool) (*shmRing, error) {
	if slots <= 0 || slotSize <= 0 || slotSize > 64<<20 || checkRingGeometry(slots) != nil {
		return nil, fmt.Errorf("shm geometry %d×%d out of range", slots, slotSize)
	}
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil || seals&unix.F_SEAL_SHRINK == 0 {
		return nil, errors.New("shm is not sealed against shrinking")
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("fstat shm: %w", err)
	}
	size := shmSize(slots, slotSize, callRing)
	if st.Size < int64(size) {
		return nil, fmt.Errorf("shm is %d bytes, geometry needs %d", st.Size, size)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap shm: %w", err)
	}
	r := &shmRing{mem: mem, slots: slots, slotSize: slotSize}
	if callRing {
		r.ringOff = shmSize(slots, slotSize, false)
	}
	return r, nil
}

func (r *shmRing) close() error {
	if r == nil || r.mem == nil {
		return nil
	}
	err := unix.Munmap(r.mem)
	r.mem = nil
	return err
}

func (r *shmRing) stateOffset(half ringHalf, slot int) int {
	return (int(half)*r.slots + slot) * shmStateSize
}

// slot returns the bytes of one slot.
func (r *shmRing) slot(half ringHalf, i int) []byte {
	off := shmHeader + (int(half)*r.slots+i)*r.slotSize
	return r.mem[off : off+r.slotSize : off+r.slotSize]
}

// acquire waits for the producer's next slot of half to be free and takes
// it. Before waiting it calls flush, so that frames naming slots the
// consumer has not yet seen are on their way.
func (r *shmRing) acquire(half ringHalf, flush func() error) (int, error) {
	i := r.next[half]
	off := r.stateOffset(half, i)
	if r.loadState(off) != 0 {
		if err := flush(); err != nil {
			return 0, err
		}
		deadline := time.Now().Add(shmWait)
		for spins := 0; r.loadState(off) != 0; spins++ {
			switch {
			case spins < 16:
				runtime.Gosched()
			case time.Now().After(deadline):
				return 0, fmt.Errorf("shm slot %d not returned within %v", i, shmWait)
			default:
				r.futexWait(off, 1, 10*time.Millisecond)
			}
		}
	}
	r.storeState(off, 1)
	r.next[half] = (i + 1) % r.slots
	return i, nil
}

// release hands a consumed slot back to its producer and wakes it if it
// waits.
func (r *shmRing) release(half ringHalf, i int) {
	off := r.stateOffset(half, i)
	r.storeState(off, 0)
	r.futexWake(off)
}

// shmRef encodes a (slot, length) reference.
func shmRef(b *[8]byte, slot int, n int) []byte {
	binary.LittleEndian.PutUint32(b[0:], uint32(slot))
	binary.LittleEndian.PutUint32(b[4:], uint32(n))
	return b[:]
}

// decodeShmRef checks a (slot, length) reference against the geometry.
func decodeShmRef(p []byte, r *shmRing) (slot, n int, err error) {
	if len(p) != 8 {
		return 0, 0, fmt.Errorf("shm reference of %d bytes", len(p))
	}
	s, l := binary.LittleEndian.Uint32(p), binary.LittleEndian.Uint32(p[4:])
	if s >= uint32(r.slots) || l == 0 || l > uint32(r.slotSize) {
		return 0, 0, fmt.Errorf("shm reference (%d, %d) outside %d slots of %d bytes", s, l, r.slots, r.slotSize)
	}
	return int(s), int(l), nil
}
