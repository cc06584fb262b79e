package labels

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/ocireg-tool/ocireg-tool/internal/safefile"
)

// Rewrite records one image whose configuration now carries the labels.
type Rewrite struct {
	Old, New v1.Hash // manifest digests
}

// Report says what Apply did to one layout.
type Report struct {
	Path string
	// Rewritten lists the images that got new config and manifest blobs.
	Rewritten []Rewrite
	// Unchanged counts images that already carried exactly these labels.
	Unchanged int
}

// Apply writes l into the config of every image of the OCI layout at path,
// a layout directory or a tar archive of one (optionally gzip-compressed).
// Each changed image gets a new config blob and manifest blob; indexes that
// list it (nested ones and index.json) are updated; descriptors keep their
// annotations and platforms. Old blobs are left for garbage collection.
// Labels the image already has are kept unless l sets them.
func Apply(path string, l Labels) (*Report, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("OCI layout: %w", err)
	}
	if st.IsDir() {
		return applyDir(path, l)
	}
	return applyArchive(path, l)
}

func applyDir(dir string, l Labels) (*Report, error) {
	rep := &Report{Path: dir}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %q: %w", dir, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %q: %w", dir, err)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(raw, &im); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", filepath.Join(dir, "index.json"), err)
	}
	root, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %q: %w", dir, err)
	}
	changed, err := rewriteIndex(p, root, &im, l, rep)
	if err != nil {
		return nil, fmt.Errorf("labelling %q: %w", dir, err)
	}
	if !changed {
		return rep, nil
	}
	data, err := json.Marshal(im)
	if err != nil {
		return nil, err
	}
	if _, err := safefile.WriteAtomic(filepath.Join(dir, "index.json"), data, 0o644); err != nil {
		return nil, err
	}
	return rep, nil
}

// rewriteIndex labels every image im (the manifest of idx) lists, recursing
// into nested indexes, and updates the descriptors in place. It reports
// whether any changed.
func rewriteIndex(p layout.Path, idx v1.ImageIndex, im *v1.IndexManifest, l Labels, rep *Report) (bool, error) {
	changed := false
	for i, desc := range im.Manifests {
		var (
			nd  v1.Descriptor
			did bool
			err error
		)
		switch {
		case desc.MediaType.IsImage():
			nd, did, err = rewriteImage(p, idx, desc, l, rep)
		case desc.MediaType.IsIndex():
			nd, did, err = rewriteNestedIndex(p, idx, desc, l, rep)
		default:
			continue // artifacts, attestations: not images
		}
		if err != nil {
			return false, err
		}
		if did {
			im.Manifests[i] = nd
			changed = true
		}
	}
	return changed, nil
}

func rewriteImage(p layout.Path, parent v1.ImageIndex, desc v1.Descriptor, l Labels, rep *Report) (v1.Descriptor, bool, error) {
	img, err := parent.Image(desc.Digest)
	if err != nil {
		return desc, false, fmt.Errorf("image %s: %w", desc.Digest, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return desc, false, fmt.Errorf("image %s: reading config: %w", desc.Digest, err)
	}
	merged := maps.Clone(cf.Config.Labels)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, l)
	if maps.Equal(merged, cf.Config.Labels) {
		rep.Unchanged++
		return desc, false, nil
	}
	cfg := cf.Config
	cfg.Labels = merged
	labelled, err := mutate.Config(img, cfg)
	if err != nil {
		return desc, false, fmt.Errorf("image %s: %w", desc.Digest, err)
	}
	if err := p.WriteImage(labelled); err != nil {
		return desc, false, fmt.Errorf("image %s: writing: %w", desc.Digest, err)
	}
	nd := desc
	if nd.Digest, err = labelled.Digest(); err != nil {
		return desc, false, err
	}
	if nd.Size, err = labelled.Size(); err != nil {
		return desc, false, err
	}
	rep.Rewritten = append(rep.Rewritten, Rewrite{Old: desc.Digest, New: nd.Digest})
	return nd, true, nil
}

func rewriteNestedIndex(p layout.Path, parent v1.ImageIndex, desc v1.Descriptor, l Labels, rep *Report) (v1.Descriptor, bool, error) {
	idx, err := parent.ImageIndex(desc.Digest)
	if err != nil {
		return desc, false, fmt.Errorf("index %s: %w", desc.Digest, err)
	}
	raw, err := idx.RawManifest()
	if err != nil {
		return desc, false, fmt.Errorf("index %s: %w", desc.Digest, err)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(raw, &im); err != nil {
		return desc, false, fmt.Errorf("index %s: %w", desc.Digest, err)
	}
	changed, err := rewriteIndex(p, idx, &im, l, rep)
	if err != nil || !changed {
		return desc, false, err
	}
	if im.MediaType == "" {
		im.MediaType = types.OCIImageIndex
	}
	data, err := json.Marshal(im)
	if err != nil {
		return desc, false, err
	}
	h, size, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		return desc, false, err
	}
	if err := p.WriteBlob(h, nopCloser{bytes.NewReader(data)}); err != nil {
		return desc, false, fmt.Errorf("index %s: writing: %w", desc.Digest, err)
	}
	nd := desc
	nd.Digest, nd.Size = h, size
	return nd, true, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
