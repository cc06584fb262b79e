package runstate

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
	r, w, err := ReadyPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ch := ListenSignal(r)
	t.Setenv(ReadyFDVar, "") // notifyListening is a no-op without the variable
	NotifyListening()
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
	t.Setenv(ReadyFDVar, strconv.Itoa(fd))
	NotifyListening()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no signal after the server wrote")
	}
	if v, ok := os.LookupEnv(ReadyFDVar); ok {
		t.Errorf("%s still set (%q): a process the server starts would inherit it", ReadyFDVar, v)
	}

	r2, w2, err := ReadyPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	ch2 := ListenSignal(r2)
	w2.Close()
	select {
	case <-ch2:
		t.Fatal("signalled for a pipe closed unwritten")
	case <-time.After(50 * time.Millisecond):
	}
}
