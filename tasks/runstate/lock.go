package runstate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
)

// LockFile is the lock of the registry serving c's port:
// "registry-<port>.lock". Start, stop, restart and gc hold it while they
// change which process serves the port, so that two of them never decide
// at the same time that the port is free.
func LockFile(c *config.Config) string {
	return filepath.Join(c.Storage, "registry-"+c.Port+".lock")
}

// ErrLockBusy is returned by Lock when another start, stop or gc of the
// same registry held the lock for longer than the wait allowed.
var ErrLockBusy = errors.New("another start, stop or gc of this registry is still running")

// Lock takes the exclusive lock of c's port (an advisory flock on
// LockFile, released by the kernel if the holder dies). It waits while
// another process holds it, at most wait, and gives up when ctx ends. The
// returned function releases the lock. The lock file is opened
// close-on-exec: a server launched while it is held does not inherit it.
func Lock(ctx context.Context, c *config.Config, wait time.Duration) (func(), error) {
	if err := os.MkdirAll(c.Storage, 0o755); err != nil {
		return nil, fmt.Errorf("creating storage directory: %w", err)
	}
	file := LockFile(c)
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", file, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w (it holds %s; waited %s)", ErrLockBusy, file, wait)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for %s: %w", file, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
