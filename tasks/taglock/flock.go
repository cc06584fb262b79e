package taglock

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// fileLock is a held lock of one tag in the lock file.
type fileLock struct{ f *os.File }

// lockPoll is how often a push waiting for a lock tries again.
const lockPoll = 20 * time.Millisecond

// lockFile takes the lock of key (repository:tag) in the lock file at
// path, waiting for it until ctx ends. Each key is one byte of the file,
// locked with an open file description lock (fcntl F_OFD_SETLK): tags
// are locked independently, as redis locks them, across processes and
// between the goroutines of one (each lock opens the file anew); two keys
// that hash to one byte only wait for each other. Under it the whole file
// is held shared (flock LOCK_SH), so whoever holds it exclusively (a tool
// of before per-tag locks) still keeps every push out.
func lockFile(ctx context.Context, path, key string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: int64(h.Sum32() & 0x7fffffff), Len: 1}
	for _, take := range []func() error{
		func() error { return unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB) },
		func() error { return unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk) },
	} {
		if err := poll(ctx, path, take); err != nil {
			f.Close()
			return nil, err
		}
	}
	return &fileLock{f: f}, nil
}

// poll calls take until it succeeds (a lock taken), fails otherwise than
// by finding the lock held, or ctx ends.
func poll(ctx context.Context, path string, take func() error) error {
	for {
		err := take()
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", path, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

// unlock lets the lock go (closing the file description releases both).
func (l *fileLock) unlock() {
	if l == nil {
		return
	}
	l.f.Close()
}
