package platform

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// controlPipeSDDL lets only Administrators (BA) and LocalSystem (SY) open
// the pipe; "P" stops inherited entries from widening it.
const controlPipeSDDL = "D:P(A;;GA;;;BA)(A;;GA;;;SY)"

// pipeAddr is a named pipe's net.Addr.
type pipeAddr string

// Network is "pipe".
func (a pipeAddr) Network() string { return "pipe" }

// String is the pipe's name.
func (a pipeAddr) String() string { return string(a) }

// pipeConn is one connected pipe instance. The handle is overlapped, so
// os.File runs it on the runtime's I/O completion port: reads and writes
// proceed concurrently (as net/http needs) and deadlines work.
type pipeConn struct {
	*os.File
	addr pipeAddr
}

// LocalAddr is the pipe's name.
func (c *pipeConn) LocalAddr() net.Addr { return c.addr }

// RemoteAddr is the pipe's name: pipe clients have no address.
func (c *pipeConn) RemoteAddr() net.Addr { return c.addr }

// pipeListener hands out one pipe instance per client.
type pipeListener struct {
	path   string
	sa     *windows.SecurityAttributes
	closed windows.Handle // event set by Close, to end a waiting Accept

	mu    sync.Mutex
	first windows.Handle // the instance made by listen, used by the first Accept
	once  sync.Once
}

func listenControl(path string) (net.Listener, error) {
	sd, err := windows.SecurityDescriptorFromString(controlPipeSDDL)
	if err != nil {
		return nil, fmt.Errorf("control pipe %s: security descriptor: %w", path, err)
	}
	l := &pipeListener{path: path, sa: &windows.SecurityAttributes{SecurityDescriptor: sd}}
	l.sa.Length = uint32(unsafe.Sizeof(*l.sa))
	// The first instance is made now, exclusively, so that a second runner
	// fails here rather than sharing the name.
	h, err := l.newInstance(true)
	if err != nil {
		if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
			return nil, fmt.Errorf("control pipe %s: another runner is listening on it; stop it first: %w", path, err)
		}
		return nil, err
	}
	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		_ = windows.CloseHandle(h)
		return nil, fmt.Errorf("control pipe %s: create event: %w", path, err)
	}
	l.first, l.closed = h, ev
	return l, nil
}

func (l *pipeListener) newInstance(first bool) (windows.Handle, error) {
	name, err := windows.UTF16PtrFromString(l.path)
	if err != nil {
		return windows.InvalidHandle, fmt.Errorf("control pipe %q: %w", l.path, err)
	}
	flags := uint32(windows.PIPE_ACCESS_DUPLEX | windows.FILE_FLAG_OVERLAPPED)
	if first {
		flags |= windows.FILE_FLAG_FIRST_PIPE_INSTANCE
	}
	h, err := windows.CreateNamedPipe(name, flags,
		windows.PIPE_TYPE_BYTE|windows.PIPE_READMODE_BYTE|windows.PIPE_WAIT|windows.PIPE_REJECT_REMOTE_CLIENTS,
		windows.PIPE_UNLIMITED_INSTANCES, 64<<10, 64<<10, 0, l.sa)
	if err != nil {
		return windows.InvalidHandle, fmt.Errorf("control pipe %s: create: %w", l.path, err)
	}
	return h, nil
}

// Accept waits for a client on a fresh pipe instance.
func (l *pipeListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	h := l.first
	l.first = windows.InvalidHandle
	l.mu.Unlock()
	if h == windows.InvalidHandle {
		if ev, _ := windows.WaitForSingleObject(l.closed, 0); ev == windows.WAIT_OBJECT_0 {
			return nil, net.ErrClosed
		}
		var err error
		if h, err = l.newInstance(false); err != nil {
			return nil, err
		}
	}
	if err := l.connect(h); err != nil {
		_ = windows.CloseHandle(h)
		return nil, err
	}
	return &pipeConn{File: os.NewFile(uintptr(h), l.path), addr: pipeAddr(l.path)}, nil
}

// connect waits for a client to open instance h, or for Close.
func (l *pipeListener) connect(h windows.Handle) error {
	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		return fmt.Errorf("control pipe %s: create event: %w", l.path, err)
	}
	defer windows.CloseHandle(ev)
	ov := windows.Overlapped{HEvent: ev}
	err = windows.ConnectNamedPipe(h, &ov)
	switch {
	case err == nil, errors.Is(err, windows.ERROR_PIPE_CONNECTED):
		return nil
	case !errors.Is(err, windows.ERROR_IO_PENDING):
		return fmt.Errorf("control pipe %s: wait for a client: %w", l.path, err)
	}
	which, err := windows.WaitForMultipleObjects([]windows.Handle{ev, l.closed}, false, windows.INFINITE)
	if err != nil {
		return fmt.Errorf("control pipe %s: wait for a client: %w", l.path, err)
	}
	var n uint32
	if which != windows.WAIT_OBJECT_0 {
		_ = windows.CancelIoEx(h, &ov)
		_ = windows.GetOverlappedResult(h, &ov, &n, true)
		return net.ErrClosed
	}
	if err := windows.GetOverlappedResult(h, &ov, &n, false); err != nil {
		return fmt.Errorf("control pipe %s: client connect: %w", l.path, err)
	}
	return nil
}

// Close stops Accept; connections already accepted stay open.
func (l *pipeListener) Close() error {
	l.once.Do(func() {
		_ = windows.SetEvent(l.closed)
		l.mu.Lock()
		if l.first != windows.InvalidHandle {
			_ = windows.CloseHandle(l.first)
			l.first = windows.InvalidHandle
		}
		l.mu.Unlock()
	})
	return nil
}

// Addr is the pipe's name.
func (l *pipeListener) Addr() net.Addr { return pipeAddr(l.path) }

func dialControl(ctx context.Context, path string) (net.Conn, error) {
	name, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, fmt.Errorf("control pipe %q: %w", path, err)
	}
	for {
		h, err := windows.CreateFile(name, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil, windows.OPEN_EXISTING, windows.FILE_FLAG_OVERLAPPED, 0)
		if err == nil {
			return &pipeConn{File: os.NewFile(uintptr(h), path), addr: pipeAddr(path)}, nil
		}
		// Busy: every instance is connected; the server makes a new one as
		// soon as it accepts.
		if !errors.Is(err, windows.ERROR_PIPE_BUSY) {
			return nil, fmt.Errorf("control pipe %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("control pipe %s: busy: %w", path, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
