package deploy

import (
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// CheckBlob makes sure the OCI layout at dir holds blob d as a regular
// file of the size its descriptor records, so that a truncated, replaced
// or missing blob is named as such instead of failing in mid-upload. (A
// blob of the right size but the wrong content is refused by the
// registry's digest check.)
func CheckBlob(dir string, d v1.Hash, size int64) error {
	path := filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
	fi, err := os.Lstat(path)
	switch {
	case os.IsNotExist(err):
		return fmt.Errorf("corrupt layout %s: blob %s is missing", dir, d)
	case err != nil:
		return fmt.Errorf("corrupt layout %s: %w", dir, err)
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("corrupt layout %s: blob %s is a symlink (refused: it may point outside the layout)", dir, d)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("corrupt layout %s: blob %s is not a regular file", dir, d)
	case fi.Size() != size:
		return fmt.Errorf("corrupt layout %s: blob %s is %d bytes, its manifest says %d", dir, d, fi.Size(), size)
	}
	return nil
}

// CheckImage runs CheckBlob on the config and layers of img, an image of
// the layout at dir.
func CheckImage(dir string, img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("corrupt layout %s: %w", dir, err)
	}
	if err := CheckBlob(dir, m.Config.Digest, m.Config.Size); err != nil {
		return err
	}
	for _, l := range m.Layers {
		if err := CheckBlob(dir, l.Digest, l.Size); err != nil {
			return err
		}
	}
	return nil
}

// CheckIndex runs CheckImage on every image idx (an index of the layout at
// dir) reaches, through nested indexes.
func CheckIndex(dir string, idx v1.ImageIndex) error {
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("corrupt layout %s: %w", dir, err)
	}
	for _, d := range im.Manifests {
		if err := CheckBlob(dir, d.Digest, d.Size); err != nil {
			return err
		}
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return fmt.Errorf("corrupt layout %s: %w", dir, err)
			}
			if err := CheckIndex(dir, child); err != nil {
				return err
			}
		case d.MediaType.IsImage():
			img, err := idx.Image(d.Digest)
			if err != nil {
				return fmt.Errorf("corrupt layout %s: %w", dir, err)
			}
			if err := CheckImage(dir, img); err != nil {
				return err
			}
		}
	}
	return nil
}
