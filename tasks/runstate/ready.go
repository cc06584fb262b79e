package runstate

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
)

// ReadyFDVar names the descriptor on which a server launched by start
// says it listens: start passes the write end of a pipe as that
// descriptor; the server writes one line to it once every listener is
// bound and closes it. A server that exits before that closes it
// unwritten. This replaces asking the kernel's socket tables which
// process holds the port (a walk of every TCP socket on the host, about
// 10 ms on a busy machine) and starts probing /v2/ only when it can
// answer.
const ReadyFDVar = "OCIREG_TOOL_READY_FD"

// ReadyPipe returns the pipe start hands to the server: it reads r, the
// server gets w.
func ReadyPipe() (r, w *os.File, err error) {
	return os.Pipe()
}

// ListenSignal returns a channel closed when the server writes its line
// to the other end of r; it stays open when the server closes the pipe
// without writing (it failed or was killed: start sees it exit).
func ListenSignal(r *os.File) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		var b [1]byte
		if n, _ := r.Read(b[:]); n == 1 {
			close(ch)
		}
	}()
	return ch
}

// NotifyListening tells the process that launched this server that it
// listens, when it was launched by start (ReadyFDVar set); it is a no-op
// for a server run in the foreground.
func NotifyListening() {
	fd, err := strconv.Atoi(os.Getenv(ReadyFDVar))
	if err != nil || fd < 3 {
		return
	}
	os.Unsetenv(ReadyFDVar)
	f := os.NewFile(uintptr(fd), "ready")
	if f == nil {
		return
	}
	_, _ = io.WriteString(f, "listening\n")
	f.Close()
}

// ListenAll listens on every address. An address this host does not
// have (::1 without IPv6) is skipped while another one listens; any other
// failure closes what was opened and is the error.
func ListenAll(addrs []string) ([]net.Listener, error) {
	var lns []net.Listener
	var missing error
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		switch {
		case err == nil:
			lns = append(lns, ln)
			continue
		case errors.Is(err, syscall.EADDRNOTAVAIL):
			missing = err
			continue
		}
		for _, l := range lns {
			l.Close()
		}
		return nil, err
	}
	if len(lns) == 0 {
		return nil, missing
	}
	return lns, nil
}
