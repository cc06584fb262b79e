package server

import (
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestListenSignal: the channel closes when the server writes its line,
// and stays open when the server closes the pipe without writing (it
// exited before listening; start learns that from its exit).
func TestListenSignal(t *testing.T) {
	r, w, err := readyPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ch := listenSignal(r)
	t.Setenv(readyFDVar, "") // notifyListening is a no-op without the variable
	notifyListening()
	select {
	case <-ch:
		t.Fatal("signalled before the server wrote")
	case <-time.After(20 * time.Millisecond):
	}
	// The server side: a descriptor of the write end (3 in the launched
	// process), which notifyListening writes and closes.
	fd, err := syscall.Dup(int(w.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Setenv(readyFDVar, strconv.Itoa(fd))
	notifyListening()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no signal after the server wrote")
	}
	if v, ok := os.LookupEnv(readyFDVar); ok {
		t.Errorf("%s still set (%q): a process the server starts would inherit it", readyFDVar, v)
	}

	r2, w2, err := readyPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	ch2 := listenSignal(r2)
	w2.Close()
	select {
	case <-ch2:
		t.Fatal("signalled for a pipe closed unwritten")
	case <-time.After(50 * time.Millisecond):
	}
}
