package safefile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// WriteUserFile writes data to path, a file the user named on the command
// line (such as sbom --output FILE), the way a shell redirection would
// treat it and never worse:
//
//   - "-" is standard output (stdout);
//   - a new file is created with mode 0666 less the umask, written
//     through a temporary file and a rename;
//   - an existing regular file keeps its mode and is replaced atomically
//     (written in place when it has other hard links, which a rename
//     would break);
//   - anything else (a symbolic link such as /dev/stdout, a device such
//     as /dev/null, a FIFO) is written through and never replaced; a link
//     to a regular file writes that file, in place; a FIFO that no process
//     reads is an error rather than a wait;
//   - the old content is never read (a device such as /dev/zero or a
//     FIFO would never end);
//   - a write to a FIFO or socket that blocks (a reader that stopped
//     reading) ends when ctx does.
func WriteUserFile(ctx context.Context, path string, data []byte, stdout io.Writer) error {
	if path == "-" {
		_, err := stdout.Write(data)
		return err
	}
	if path == "" {
		return errors.New("empty output file name (- is standard output)")
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return replace(path, data, 0o666, false)
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s is a directory", path)
	case fi.Mode().IsRegular() && links(fi) <= 1:
		return replace(path, data, fi.Mode().Perm(), true)
	}
	return writeThrough(ctx, path, data)
}

// links is the hard link count of fi (1 when unknown).
func links(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// replace writes data to a temporary file beside path and renames it
// over path. The temporary file is created with perm (the umask applies);
// force sets perm exactly (an existing file's mode).
func replace(path string, data []byte, perm os.FileMode, force bool) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	var tmp *os.File
	var err error
	for i := 0; ; i++ {
		name := filepath.Join(dir, "."+base+".tmp"+strconv.FormatInt(time.Now().UnixNano()+int64(i), 36))
		tmp, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err == nil || !errors.Is(err, fs.ErrExist) || i > 100 {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if force {
		if err := tmp.Chmod(perm); err != nil {
			tmp.Close()
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// writeThrough opens what path leads to for writing, without waiting for
// a FIFO reader, and writes data to it; a regular file is truncated first.
func writeThrough(ctx context.Context, path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0o666)
	if errors.Is(err, syscall.ENXIO) {
		return fmt.Errorf("%s: no process reads it (a FIFO or socket); not waiting for one", path)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	switch {
	case st.Mode().IsRegular():
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	case st.Mode()&os.ModeNamedPipe == 0 && st.Mode()&os.ModeSocket == 0:
		// A device: plain blocking writes (Fd leaves non-blocking mode,
		// which only served not to wait for a FIFO reader).
		f.Fd()
	default:
		// A FIFO or socket goes through the runtime's poller: a write
		// blocked on a reader that stopped reading ends with ctx.
		stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	if _, err := f.Write(data); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("writing %s: %w", path, context.Cause(ctx))
		}
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
