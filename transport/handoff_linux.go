package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// LocalFiles duplicates a local session's socket and shared-memory ring
// descriptors, so that another process can serve it (ServeLocalFiles).
// ok is false for sessions that did not arrive on the local path.
func (p Peer) LocalFiles() (sock, shm *os.File, ok bool, err error) {
	if p.local == nil {
		return nil, nil, false, nil
	}
	sock, err = p.local.File()
	if err != nil {
		return nil, nil, true, err
	}
	fd, err := unix.FcntlInt(uintptr(p.shmFD), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		sock.Close()
		return nil, nil, true, fmt.Errorf("dup shm: %w", err)
	}
	return sock, os.NewFile(uintptr(fd), "kerf-shm"), true, nil
}

// ServeLocalFiles serves an admitted local session from descriptors that
// LocalFiles produced in another process. It takes ownership of both files.
func (s *Server) ServeLocalFiles(ctx context.Context, sock, shm *os.File, adm Admission, prefix []byte, addr string) error {
	defer sock.Close()
	defer shm.Close()
	c, err := net.FileConn(sock)
	if err != nil {
		return err
	}
	conn, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return errors.New("local session descriptor is not a Unix socket")
	}
	ring, err := mapShmRing(int(shm.Fd()), shmSlots, shmSlotSize, true)
	if err != nil {
		conn.Close()
		return err
	}
	defer ring.close()
	s.ServeAdmitted(ctx, conn, Peer{Transport: "unix", Addr: addr, Shm: ring}, adm, prefix)
	return nil
}
