package server

import (
	"io"
	"os"
	"strconv"
)

// readyFDVar names the descriptor on which a server launched by start
// says it listens: start passes the write end of a pipe as that
// descriptor; the server writes one line to it once every listener is
// bound and closes it. A server that exits before that closes it
// unwritten. This replaces asking the kernel's socket tables which
// process holds the port (a walk of every TCP socket on the host, about
// 10 ms on a busy machine) and starts probing /v2/ only when it can
// answer.
const readyFDVar = "OCIREG_TOOL_READY_FD"

// readyPipe returns the pipe start hands to the server: it reads r, the
// server gets w.
func readyPipe() (r, w *os.File, err error) {
	return os.Pipe()
}

// listenSignal returns a channel closed when the server writes its line
// to the other end of r; it stays open when the server closes the pipe
// without writing (it failed or was killed: start sees it exit).
func listenSignal(r *os.File) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		var b [1]byte
		if n, _ := r.Read(b[:]); n == 1 {
			close(ch)
		}
	}()
	return ch
}

// notifyListening tells the process that launched this server that it
// listens, when it was launched by start (readyFDVar set); it is a no-op
// for a server run in the foreground.
func notifyListening() {
	fd, err := strconv.Atoi(os.Getenv(readyFDVar))
	if err != nil || fd < 3 {
		return
	}
	os.Unsetenv(readyFDVar)
	f := os.NewFile(uintptr(fd), "ready")
	if f == nil {
		return
	}
	_, _ = io.WriteString(f, "listening\n")
	f.Close()
}
