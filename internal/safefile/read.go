package safefile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ReadRegular reads the regular file at path (symbolic links followed),
// at most limit bytes: a device, FIFO, socket or directory is refused
// before it is read (a FIFO is not waited for), so are files of the
// kernel's pseudo file systems (/proc, /sys), whose size says nothing,
// and a file larger than limit. The errors name path.
func ReadRegular(path string, limit int64) ([]byte, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if err := regular(path, fi); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readOpened(f, path, limit)
}

// ReadRegularIn reads name inside dir as ReadRegular does, and only when
// the file it leads to (symbolic links resolved) stays inside dir and
// outside /proc, /sys and /dev: links within dir (such as a deploy
// directory's IMAGE_LINK_NAME links) work, a link out of it is refused.
// The file is opened through an os.Root of dir, so a link changed between
// the check and the open cannot lead out either.
func ReadRegularIn(dir, name string, limit int64) ([]byte, error) {
	path := filepath.Join(dir, name)
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return nil, fmt.Errorf("%s leads to %s, outside %s: refused", path, real, dir)
	}
	for _, p := range []string{"/proc", "/sys", "/dev"} {
		if real == p || strings.HasPrefix(real, p+"/") {
			return nil, fmt.Errorf("%s leads to %s, in %s: refused", path, real, p)
		}
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if fi, err := r.Stat(rel); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	} else if err := regular(path, fi); err != nil {
		return nil, err
	}
	f, err := r.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	return readOpened(f, path, limit)
}

// regular refuses anything but a regular file.
func regular(path string, fi fs.FileInfo) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	kind := "not a regular file"
	switch m := fi.Mode(); {
	case m.IsDir():
		kind = "a directory"
	case m&os.ModeNamedPipe != 0:
		kind = "a FIFO"
	case m&os.ModeSocket != 0:
		kind = "a socket"
	case m&os.ModeDevice != 0:
		kind = "a device"
	}
	return fmt.Errorf("%s is %s, not a regular file: refused", path, kind)
}

// readOpened checks the open file f again (it may have changed since the
// name was checked) and reads it, bounded.
func readOpened(f *os.File, path string, limit int64) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := regular(path, fi); err != nil {
		return nil, err
	}
	if fs := pseudoFS(f); fs != "" {
		return nil, fmt.Errorf("%s is on %s, not a file of its own: refused", path, fs)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the limit of %s", path, fi.Size(), Bytes(limit))
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than the limit of %s", path, Bytes(limit))
	}
	return data, nil
}

// Bytes shows a limit in the unit it was chosen in: "4 MiB", "512 KiB".
func Bytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
