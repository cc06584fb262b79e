package labels

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/ocireg-tool/ocireg-tool/tasks/ocilayout"
)

// applyArchive labels an OCI layout kept as a tar archive: it unpacks the
// archive beside itself, labels the layout, and replaces the archive with
// one holding the original entries in their original order (index.json with
// its new content) followed by the new blobs.
func applyArchive(archive string, l Labels) (*Report, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(archive), ".oci-labels-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	entries, gz, err := unpack(archive, tmp)
	if err != nil {
		return nil, fmt.Errorf("unpacking %q: %w", archive, err)
	}
	index, _, err := layoutIndex(entries)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", archive, err)
	}
	rep, err := applyDir(filepath.Join(tmp, filepath.FromSlash(path.Dir(index))), l)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", archive, err)
	}
	rep.Path = archive
	if len(rep.Rewritten) == 0 {
		return rep, nil
	}
	if err := repack(archive, tmp, entries, gz); err != nil {
		return nil, fmt.Errorf("writing %q: %w", archive, err)
	}
	return rep, nil
}

// layoutIndex finds the index.json of the layout in an archive's entries:
// at the top (the *-oci.tar shape) or in one top-level directory (the
// *-oci-dir.tar shape, the layout directory itself). It returns its clean
// name and its header.
func layoutIndex(entries []*tar.Header) (string, *tar.Header, error) {
	var nested []*tar.Header
	var names []string
	for _, h := range entries {
		name, _ := ocilayout.EntryName(h.Name)
		switch {
		case name == "index.json":
			return name, h, nil
		case path.Base(name) == "index.json" && !strings.Contains(path.Dir(name), "/"):
			nested, names = append(nested, h), append(names, name)
		}
	}
	switch len(nested) {
	case 0:
		return "", nil, fmt.Errorf("no index.json in the archive")
	case 1:
		return names[0], nested[0], nil
	}
	return "", nil, fmt.Errorf("more than one layout in the archive (%s)", strings.Join(names, ", "))
}

// maxArchiveEntries bounds the entries of an archive to label.
const maxArchiveEntries = 1 << 16

// unpack extracts archive into dir and returns its headers in order and
// whether it was gzip-compressed. What it writes is bounded: a plain
// archive holds all its data, so its entries add up to at most its size;
// a compressed one may not use more than the free space of dir; a sparse
// entry (whose data would expand beyond the archive) is refused.
func unpack(archive, dir string) ([]*tar.Header, bool, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	br := bufio.NewReader(f)
	var r io.Reader = br
	magic, _ := br.Peek(2)
	gz := len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b
	if gz {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, false, err
		}
		defer zr.Close()
		r = zr
	}
	b, err := newBudget(st.Size(), gz, dir)
	if err != nil {
		return nil, false, err
	}
	tr := tar.NewReader(r)
	var entries []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, err
		}
		if len(entries) >= maxArchiveEntries {
			return nil, false, fmt.Errorf("more than %d entries", maxArchiveEntries)
		}
		if err := extract(tr, h, dir, b); err != nil {
			return nil, false, err
		}
		entries = append(entries, h)
	}
	if len(entries) == 0 {
		return nil, false, fmt.Errorf("empty archive")
	}
	return entries, gz, nil
}

// budget is what unpack may still write, and what bounds it.
type budget struct {
	left  int64
	where string
}

// newBudget: a plain archive's entries fit in its own size; a compressed
// one gets the free space of dir.
func newBudget(size int64, gz bool, dir string) (*budget, error) {
	if !gz {
		return &budget{left: size, where: "the archive's own size"}, nil
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return nil, err
	}
	return &budget{left: int64(fs.Bavail) * int64(fs.Bsize), where: "the free space beside it"}, nil
}

// extract writes the entry h of tr under dir, within b.
func extract(tr *tar.Reader, h *tar.Header, dir string, b *budget) error {
	name, err := ocilayout.EntryName(h.Name)
	if err != nil {
		return err
	}
	if ocilayout.IsSparse(h) {
		return fmt.Errorf("entry %q is a sparse file of %d bytes (refused: an OCI layout has none)", h.Name, h.Size)
	}
	dst := filepath.Join(dir, filepath.FromSlash(name))
	switch h.Typeflag {
	case tar.TypeDir:
		return os.MkdirAll(dst, 0o755)
	case tar.TypeReg:
	default:
		return fmt.Errorf("entry %q: unsupported type %q in an OCI layout archive", h.Name, h.Typeflag)
	}
	if h.Size > b.left {
		return fmt.Errorf("entry %q declares %d bytes, more than is left of %s", h.Name, h.Size, b.where)
	}
	b.left -= h.Size
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, tr)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// repack writes the layout in dir over archive: the original entries in
// their order with current contents, then files that are new (the labelled
// blobs), named and stamped like index.json.
func repack(archive, dir string, entries []*tar.Header, gz bool) error {
	st, err := os.Stat(archive)
	if err != nil {
		return err
	}
	out, err := os.CreateTemp(filepath.Dir(archive), "."+filepath.Base(archive)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	bw := bufio.NewWriter(out)
	var w io.Writer = bw
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(bw)
		w = zw
	}
	tw := tar.NewWriter(w)

	index, template, err := layoutIndex(entries)
	if err != nil {
		return err
	}
	// The spelling of the archive's names ("./" or not) for the new ones.
	prefix := strings.TrimSuffix(template.Name, index)
	seen := map[string]bool{}
	for _, h := range entries {
		name, _ := ocilayout.EntryName(h.Name)
		seen[name] = true
		if err := writeEntry(tw, dir, name, h); err != nil {
			return err
		}
	}
	added, err := newFiles(dir, seen)
	if err != nil {
		return err
	}
	for _, rel := range added {
		h := *template
		h.Name = prefix + rel
		if err := writeEntry(tw, dir, rel, &h); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := out.Chmod(st.Mode().Perm()); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(out.Name(), archive)
}

// newFiles lists, sorted, the files under dir that seen does not name.
func newFiles(dir string, seen map[string]bool) ([]string, error) {
	var added []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); !seen[rel] {
			added = append(added, rel)
		}
		return nil
	})
	sort.Strings(added)
	return added, err
}

func writeEntry(tw *tar.Writer, dir, name string, h *tar.Header) error {
	if h.Typeflag != tar.TypeReg {
		return tw.WriteHeader(h)
	}
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	hc := *h
	hc.Size = st.Size()
	if err := tw.WriteHeader(&hc); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
