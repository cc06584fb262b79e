package ocilayout

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// MaxArchiveEntries bounds the entries of a layout archive.
const MaxArchiveEntries = 1 << 16

// unsafeError says why a file of the layout is refused.
type unsafeError struct {
	name string // slash-separated, relative to the layout
	why  string // e.g. "is a symlink (refused: ...)"
}

func (e *unsafeError) Error() string { return e.name + " " + e.why }

const symlinkRefused = "is a symlink (refused: it may point outside the layout)"

// notExist is the error for a file the layout lacks.
func notExist(where string) error {
	return &fs.PathError{Op: "open", Path: where, Err: syscall.ENOENT}
}

// dirStore is a layout directory. Every path is opened below the
// directory (os.Root) and no component may be a symlink, so a symlinked
// blob or blobs directory cannot lead out of the layout.
type dirStore struct{ dir string }

func openDir(dir string) (dirStore, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return dirStore{}, fmt.Errorf("oci layout %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return dirStore{}, fmt.Errorf("oci layout %s is not a directory", dir)
	}
	return dirStore{dir: dir}, nil
}

func (s dirStore) path(name string) string { return filepath.Join(s.dir, filepath.FromSlash(name)) }

func (s dirStore) close() error { return nil }

func (s dirStore) open(name string) (io.ReadCloser, int64, error) {
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, 0, err
	}
	defer root.Close()
	parts := strings.Split(name, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		fi, err := root.Lstat(p)
		if os.IsNotExist(err) {
			return nil, 0, notExist(s.path(name))
		}
		if err != nil {
			return nil, 0, err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return nil, 0, &unsafeError{name: p, why: symlinkRefused}
		}
	}
	// O_NOFOLLOW: a blob swapped for a symlink after the check is refused
	// all the same.
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if os.IsNotExist(err) {
		return nil, 0, notExist(s.path(name))
	}
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, &unsafeError{name: name, why: "is not a regular file"}
	}
	return f, fi.Size(), nil
}

// tarStore is a layout kept in a tar archive, read in place: its headers
// are indexed once and each file is read from its offset in the archive.
type tarStore struct {
	file    string
	f       *os.File
	entries map[string]tarEntry
}

type tarEntry struct {
	typ       byte
	off, size int64
}

func openTar(ctx context.Context, file string) (*tarStore, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	s := &tarStore{file: file, f: f, entries: map[string]tarEntry{}}
	if err := s.index(ctx); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// index reads every header of the archive. A *os.File is an io.Seeker, so
// tar.Reader seeks over the data it skips: nothing but headers is read.
func (s *tarStore) index(ctx context.Context) error {
	fi, err := s.f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("the archive is not a regular file")
	}
	var magic [2]byte
	if n, _ := s.f.ReadAt(magic[:], 0); n == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return fmt.Errorf("the archive is gzip-compressed; decompress it first (archives are read in place, not extracted)")
	}
	tr := tar.NewReader(s.f)
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		h, err := tr.Next()
		if err == io.EOF {
			if err := s.checkEnd(); err != nil {
				return err
			}
			break
		}
		if err != nil {
			return err
		}
		if n >= MaxArchiveEntries {
			return fmt.Errorf("more than %d entries", MaxArchiveEntries)
		}
		name, err := EntryName(h.Name)
		if err != nil {
			return err
		}
		if IsSparse(h) {
			return fmt.Errorf("entry %q is a sparse file of %d bytes (refused: an OCI layout has none)", h.Name, h.Size)
		}
		off, err := s.f.Seek(0, io.SeekCurrent)
		if err != nil {
			return err
		}
		e := tarEntry{typ: h.Typeflag, off: off, size: h.Size}
		if h.Typeflag == tar.TypeReg {
			if h.Size < 0 || off+h.Size > fi.Size() {
				return fmt.Errorf("truncated archive: entry %q declares %d bytes, past its end (%d bytes)", h.Name, h.Size, fi.Size())
			}
		}
		s.entries[name] = e
	}
	if len(s.entries) == 0 {
		return fmt.Errorf("empty archive")
	}
	return nil
}

// checkEnd tells an archive that ends with its end-of-archive zero blocks
// from one cut at a block boundary, which tar.Reader reads as complete.
func (s *tarStore) checkEnd() error {
	pos, err := s.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	var blk [512]byte
	if pos < int64(len(blk)) {
		return fmt.Errorf("truncated archive: no end-of-archive marker")
	}
	if _, err := s.f.ReadAt(blk[:], pos-int64(len(blk))); err != nil {
		return err
	}
	if blk != [512]byte{} {
		return fmt.Errorf("truncated archive: no end-of-archive marker")
	}
	return nil
}

// IsSparse reports whether h is a sparse file, whose data expands beyond
// what the archive holds (GNU's old format or the PAX GNU.sparse records).
func IsSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// EntryName cleans a tar entry name and rejects names leaving the archive.
func EntryName(name string) (string, error) {
	clean := path.Clean(name)
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("entry %q leaves the archive", name)
	}
	return clean, nil
}

func (s *tarStore) path(name string) string { return name + " in " + s.file }

func (s *tarStore) close() error { return s.f.Close() }

func (s *tarStore) open(name string) (io.ReadCloser, int64, error) {
	e, ok := s.entries[name]
	if !ok {
		return nil, 0, notExist(s.path(name))
	}
	switch e.typ {
	case tar.TypeReg:
		return io.NopCloser(io.NewSectionReader(s.f, e.off, e.size)), e.size, nil
	case tar.TypeSymlink:
		return nil, 0, &unsafeError{name: name, why: symlinkRefused}
	case tar.TypeLink:
		return nil, 0, &unsafeError{name: name, why: "is a hard link (refused: it may name a file outside the layout)"}
	}
	return nil, 0, &unsafeError{name: name, why: "is not a regular file"}
}
