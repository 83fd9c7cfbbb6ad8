package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ServeUnix accepts local tenants on ln until ctx ends. Each connection
// first receives the session's shared-memory ring (a sealed memfd, over
// SCM_RIGHTS), then runs the session protocol. Bulk data of shmMin bytes
// or more travels through the ring's slots, not the socket, and from
// protocol version 2 the client's frames through its call ring.
func (s *Server) ServeUnix(ctx context.Context, ln *net.UnixListener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.logger().Warn("unix accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveUnixConn(ctx, conn)
		}()
	}
}

func (s *Server) serveUnixConn(ctx context.Context, conn *net.UnixConn) {
	ring, fd, err := newShmRing(shmSlots, shmSlotSize)
	if err != nil {
		s.logger().Error("local session: no shared memory", "err", err)
		conn.Close()
		return
	}
	defer ring.close()
	defer unix.Close(fd) // kept until here, for a handoff
	if _, _, err = conn.WriteMsgUnix([]byte{0}, unix.UnixRights(fd), nil); err != nil {
		s.logger().Warn("local session: passing shared memory", "err", err)
		conn.Close()
		return
	}
	peer := Peer{Transport: "unix", Addr: peerCred(conn), Shm: ring, Deadline: conn.SetReadDeadline, local: conn, shmFD: fd}
	s.ServeStream(ctx, conn, peer)
}

// peerCred names a local peer by its process credentials.
func peerCred(conn *net.UnixConn) string {
	raw, err := conn.SyscallConn()
	if err != nil {
		return "unix"
	}
	var cred *unix.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, _ = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if cred == nil {
		return "unix"
	}
	return fmt.Sprintf("pid=%d uid=%d", cred.Pid, cred.Uid)
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
	conn, fd, err := dialUnixRaw(ctx, path)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	cl, err := newClient(conn, fd, opts)
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return cl, nil
}

// dialUnixRaw connects and receives the session's shared-memory ring.
// The connection keeps ctx's deadline until the caller clears it.
func dialUnixRaw(ctx context.Context, path string) (*net.UnixConn, int, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, -1, fmt.Errorf("kerf: connecting to %s: %w", path, err)
	}
	conn := c.(*net.UnixConn)
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	fd, err := recvFD(conn)
	if err != nil {
		conn.Close()
		return nil, -1, fmt.Errorf("kerf: receiving shared memory from %s: %w", path, err)
	}
	return conn, fd, nil
}

func recvFD(conn *net.UnixConn) (int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return -1, err
	}
	if n != 1 || oobn == 0 {
		return -1, errors.New("server sent no file descriptor")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, errors.New("malformed control message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return -1, errors.New("expected exactly one file descriptor")
	}
	return fds[0], nil
}
