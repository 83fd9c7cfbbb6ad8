package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kerf-edge/kerf/abi"
)

// ServeUnix accepts local tenants on ln until ctx ends. Each connection
// runs the session protocol; once its hello authenticates, it receives
// the session's shared-memory ring (a sealed memfd, over SCM_RIGHTS)
// before the hello's reply. Bulk data of shmMin bytes or more travels
// through the ring's slots, not the socket, and from protocol version 2
// the client's frames through its call ring.
//
// Connections not yet authenticated are capped by s.Limits, per listener
// and per peer uid; one over a cap is closed at once.
func (s *Server) ServeUnix(ctx context.Context, ln *net.UnixListener) error {
	s.guards()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()
	pause := time.Duration(0)
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors, most likely: back off as net/http does,
			// and log a summary, not a line per try.
			s.acceptFailed.Log("transport", "unix", "err", err)
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			time.Sleep(pause)
			continue
		}
		pause = 0
		uid, addr := peerCred(conn)
		ticket := s.unixGuard.Admit(uid)
		if ticket == nil {
			conn.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer ticket.Release()
			peer := Peer{Transport: "unix", Addr: addr, Deadline: conn.SetReadDeadline, local: conn, shmFD: -1,
				handshakeDone: func(bool) { ticket.Release() }}
			s.ServeStream(ctx, conn, peer)
		}()
	}
}

// offerShm creates a local session's shared-memory ring, once its hello
// has authenticated, and passes it to the client. The returned func
// unmaps kerfd's view and closes its descriptor, kept until the session
// ends for a handoff.
func (ss *session) offerShm() (release func(), err error) {
	ring, fd, err := newShmRing(shmSlots, shmSlotSize)
	if err != nil {
		return func() {}, ss.refuse(abi.ErrOutOfMemory, "no shared memory: "+abi.Message(err))
	}
	release = func() {
		ring.close()
		unix.Close(fd)
	}
	if _, _, err := ss.peer.local.WriteMsgUnix([]byte{0}, unix.UnixRights(fd), nil); err != nil {
		release()
		return func() {}, fmt.Errorf("passing shared memory: %w", err)
	}
	ss.peer.Shm, ss.peer.shmFD = ring, fd
	return release, nil
}

// peerCred names a local peer by its process credentials: its uid, the
// key its unauthenticated connections are capped by, and a description
// for logs.
func peerCred(conn *net.UnixConn) (uid, addr string) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return "unknown", "unix"
	}
	var cred *unix.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, _ = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if cred == nil {
		return "unknown", "unix"
	}
	return fmt.Sprintf("uid=%d", cred.Uid), fmt.Sprintf("pid=%d uid=%d", cred.Pid, cred.Uid)
}

// ListenUnix listens on a Unix socket at path, replacing a stale socket
// file. The socket is made accessible to every local user: tenants
// authenticate with their token, not their uid.
func ListenUnix(path string) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s is in use by another server", path)
		}
		os.Remove(path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// DialUnix opens a local session on the server listening at path.
func DialUnix(ctx context.Context, path string, opts Options) (*Client, error) {
	conn, err := dialUnix(ctx, path)
	if err != nil {
		return nil, err
	}
	cl, err := newClient(conn, conn, opts)
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return cl, nil
}

// dialUnix connects to the local server. The connection keeps ctx's
// deadline until the caller clears it.
func dialUnix(ctx context.Context, path string) (*net.UnixConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", path, err)
	}
	conn := c.(*net.UnixConn)
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	return conn, nil
}

func closeShmFD(fd int) { unix.Close(fd) }

// recvShm reads what the server sends after the hello on the local path:
// the shared-memory ring's descriptor, with one byte, when the hello
// authenticated; else the first byte of the frame that refuses it, which
// it returns in prefix (fd is then -1). A server that sends the ring
// before the hello (as servers did before it authenticated first) is read
// the same way.
func recvShm(conn *net.UnixConn) (fd int, prefix []byte, err error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return -1, nil, err
	}
	if n != 1 {
		return -1, nil, io.ErrUnexpectedEOF
	}
	if oobn == 0 {
		return -1, buf, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, nil, errors.New("malformed control message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return -1, nil, errors.New("expected exactly one file descriptor")
	}
	return fds[0], nil, nil
}
