package safefile

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// within runs f and fails the test when it does not return in d (a write
// that reads its old target or waits for a FIFO reader never returns).
func within(t *testing.T, d time.Duration, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s: no answer after %s", what, d)
		return nil
	}
}

func withUmask(t *testing.T, mask int) {
	t.Helper()
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

// An output file a user names is written, never replaced when it is not
// a regular file, never read, and keeps (or, new, gets from the umask)
// its mode; "-" is standard output.
func TestWriteUserFile(t *testing.T) {
	dir := t.TempDir()
	data := []byte(`{"spdxVersion":"SPDX-3.0"}`)

	t.Run("dash is stdout", func(t *testing.T) {
		t.Chdir(dir)
		var out bytes.Buffer
		if err := WriteUserFile(context.Background(), "-", data, &out); err != nil {
			t.Fatal(err)
		}
		if out.String() != string(data) {
			t.Errorf("stdout got %q", out.String())
		}
		if _, err := os.Lstat(filepath.Join(dir, "-")); err == nil {
			t.Error("a file named - was written")
		}
	})

	t.Run("new file honours the umask", func(t *testing.T) {
		withUmask(t, 0o077)
		p := filepath.Join(dir, "new.json")
		if err := WriteUserFile(context.Background(), p, data, io.Discard); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("new file under umask 077: %v %v, want 0600", st.Mode(), err)
		}
	})

	t.Run("existing file keeps its mode", func(t *testing.T) {
		withUmask(t, 0o022)
		p := filepath.Join(dir, "kept.json")
		if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := WriteUserFile(context.Background(), p, data, io.Discard); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(p)
		got, _ := os.ReadFile(p)
		if st.Mode().Perm() != 0o600 || string(got) != string(data) {
			t.Errorf("mode %v content %q, want 0600 and the new content", st.Mode(), got)
		}
	})

	t.Run("link to a device is written through", func(t *testing.T) {
		link := filepath.Join(dir, "null")
		if err := os.Symlink("/dev/null", link); err != nil {
			t.Fatal(err)
		}
		if err := within(t, 5*time.Second, "write to a link to /dev/null", func() error { return WriteUserFile(context.Background(), link, data, io.Discard) }); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
		}
		if fi, err := os.Stat("/dev/null"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			t.Fatalf("/dev/null is no longer a device: %v %v", fi.Mode(), err)
		}
	})

	t.Run("/dev/null itself", func(t *testing.T) {
		// Only with the fixed code: the old one, run as root, replaced
		// the system's /dev/null with a regular file.
		if err := WriteUserFile(context.Background(), "/dev/null", data, io.Discard); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat("/dev/null"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			t.Fatalf("/dev/null is no longer a device: %v %v", fi.Mode(), err)
		}
	})

	t.Run("a never-ending device is not read", func(t *testing.T) {
		link := filepath.Join(dir, "zero")
		if err := os.Symlink("/dev/zero", link); err != nil {
			t.Fatal(err)
		}
		if err := within(t, time.Second, "write to a link to /dev/zero", func() error { return WriteUserFile(context.Background(), link, data, io.Discard) }); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("the link was replaced: %v", fi.Mode())
		}
	})

	t.Run("link to a regular file writes the target", func(t *testing.T) {
		target := filepath.Join(dir, "target.json")
		if err := os.WriteFile(target, []byte("old old old old old old old old old"), 0o640); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, "latest.json")
		if err := os.Symlink("target.json", link); err != nil {
			t.Fatal(err)
		}
		if err := WriteUserFile(context.Background(), link, data, io.Discard); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Lstat(link)
		got, _ := os.ReadFile(target)
		st, _ := os.Stat(target)
		if fi.Mode()&os.ModeSymlink == 0 || string(got) != string(data) || st.Mode().Perm() != 0o640 {
			t.Errorf("link %v, target %q mode %v: want the link kept and the target rewritten, 0640", fi.Mode(), got, st.Mode())
		}
	})

	t.Run("FIFO without a reader", func(t *testing.T) {
		fifo := filepath.Join(dir, "fifo")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		err := within(t, 5*time.Second, "write to a FIFO nobody reads", func() error { return WriteUserFile(context.Background(), fifo, data, io.Discard) })
		if err == nil || !strings.Contains(err.Error(), fifo) {
			t.Errorf("%v, want an error naming the FIFO", err)
		}
		if fi, _ := os.Lstat(fifo); fi.Mode()&os.ModeNamedPipe == 0 {
			t.Errorf("the FIFO was replaced: %v", fi.Mode())
		}
	})

	t.Run("FIFO with a reader", func(t *testing.T) {
		fifo := filepath.Join(dir, "fifo2")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		got := make(chan []byte, 1)
		opened := make(chan struct{})
		go func() {
			f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			close(opened)
			if err != nil {
				got <- nil
				return
			}
			defer f.Close()
			var b bytes.Buffer
			deadline := time.Now().Add(5 * time.Second)
			buf := make([]byte, 4096)
			for time.Now().Before(deadline) && b.Len() < len(data) {
				n, _ := f.Read(buf)
				b.Write(buf[:n])
				if n == 0 {
					time.Sleep(10 * time.Millisecond)
				}
			}
			got <- b.Bytes()
		}()
		<-opened
		if err := within(t, 5*time.Second, "write to a FIFO with a reader", func() error { return WriteUserFile(context.Background(), fifo, data, io.Discard) }); err != nil {
			t.Fatal(err)
		}
		if b := <-got; string(b) != string(data) {
			t.Errorf("the reader got %q", b)
		}
	})

	t.Run("FIFO whose reader stops reading", func(t *testing.T) {
		fifo := filepath.Join(dir, "fifo3")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(200*time.Millisecond, func() { cancel(errors.New("interrupted by SIGTERM")) })
		big := bytes.Repeat([]byte("x"), 4<<20) // more than a pipe holds
		err = within(t, 5*time.Second, "write to a FIFO nobody drains", func() error { return WriteUserFile(ctx, fifo, big, io.Discard) })
		if err == nil || !strings.Contains(err.Error(), "interrupted by SIGTERM") {
			t.Errorf("%v, want the write ended by the context", err)
		}
	})

	t.Run("directory", func(t *testing.T) {
		if err := WriteUserFile(context.Background(), dir, data, io.Discard); err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("%v, want an error naming the directory", err)
		}
	})
}
