package transfer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/ocilayout"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

// ExportUsage is the export command's usage, shown with usage errors.
const ExportUsage = `Usage: container-registry.sh export <image>[:tag]... --output FILE [options]

  export container-base:v1 app-server:v1 --output release-1.tar
  export container-base --all-tags --output all.tar
  export container-base:v2 app-server:v2 --output update-2.tar --since release-1.tar`

// Bundle annotations: the image an index.json entry belongs to, and the
// mark of a bundle (its value: "full", or "differential").
const (
	RefNameAnnotation = "org.opencontainers.image.ref.name"
	ImageAnnotation   = "io.ocireg-tool.bundle.image"
	BundleAnnotation  = "io.ocireg-tool.bundle"
)

// ExportOptions say what to export where.
type ExportOptions struct {
	Selection
	// Output is the archive to write (replaced atomically).
	Output string
	// Since is an earlier bundle: blobs it holds are left out (a
	// differential bundle).
	Since  string
	Events events.Sink
}

// ExportResult is what Export wrote.
type ExportResult struct {
	Output string          `json:"output"`
	Since  string          `json:"since,omitempty"`
	Images []ExportedImage `json:"images"`
	// Blobs counts the blobs written (manifests included); Skipped the
	// blobs left out because the earlier bundle holds them.
	Blobs   int   `json:"blobs"`
	Skipped int   `json:"skipped"`
	Size    int64 `json:"size"`
	// SHA256 is the archive's checksum.
	SHA256 string `json:"sha256"`
}

// ExportedImage is one image of a bundle.
type ExportedImage struct {
	Repo      string   `json:"repository"`
	Name      string   `json:"name"`
	Tags      []string `json:"tags"`
	Manifests int      `json:"manifests"`
	Referrers int      `json:"referrers"`
}

// epoch is every entry's modification time: the same content gives the
// same bytes.
var epoch = time.Unix(0, 0)

// Export writes the selected images of t, with every platform and
// referrer, to one OCI image layout archive. The bytes depend only on the
// registry content: entries in a fixed order with fixed times and owners.
// Blobs are streamed from the registry (memory stays flat) into a
// temporary file beside Output, renamed over it once complete.
func Export(ctx context.Context, t *registry.Target, o ExportOptions) (*ExportResult, error) {
	if o.Output == "" {
		return nil, &tasks.UsageError{Msg: "export needs --output FILE", Usage: ExportUsage}
	}
	if fi, err := os.Stat(o.Output); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("--output %s: not a regular file", o.Output)
	}
	var since *ocilayout.Layout
	if o.Since != "" {
		l, err := ocilayout.OpenArchive(ctx, o.Since)
		if err != nil {
			return nil, fmt.Errorf("--since %s: %w", o.Since, err)
		}
		defer l.Close()
		since = l
	}
	if err := t.Ping(ctx); err != nil {
		return nil, err
	}
	imgs, err := walkRegistry(ctx, t, o.Selection, ExportUsage)
	if err != nil {
		return nil, err
	}
	res := &ExportResult{Output: o.Output, Since: o.Since}
	index, err := bundleIndex(imgs, since != nil)
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		ei := ExportedImage{Repo: img.Repo, Name: img.Name, Manifests: len(img.Manifests), Referrers: img.Referrers()}
		for _, tg := range img.Tags {
			ei.Tags = append(ei.Tags, tg.Name)
		}
		res.Images = append(res.Images, ei)
	}
	blobs, skipped := bundleBlobs(imgs, since)
	res.Blobs, res.Skipped = len(blobs), skipped
	m := &meter{ev: events.Or(o.Events)}
	for _, b := range blobs {
		if b.desc.Digest.Algorithm != "sha256" {
			return nil, fmt.Errorf("blob %s: only sha256 digests can be exported", b.desc.Digest)
		}
		if b.raw == nil {
			m.total.Add(b.desc.Size)
		}
	}
	if res.SHA256, res.Size, err = writeBundle(ctx, t, o.Output, index, blobs, m); err != nil {
		return nil, err
	}
	m.finish()
	return res, nil
}

// bundleBlob is one blob of a bundle and where its bytes are.
type bundleBlob struct {
	desc v1.Descriptor
	raw  []byte // a manifest's bytes
	repo string // else the repository the blob is read from
}

// bundleBlobs are the blobs of imgs, each once, in digest order: every
// manifest, and the configs and layers since does not hold (their count
// is skipped).
func bundleBlobs(imgs []*Image, since *ocilayout.Layout) ([]bundleBlob, int) {
	all := map[v1.Hash]*bundleBlob{}
	skipped := 0
	for _, img := range imgs {
		for _, m := range img.Manifests {
			all[m.Desc.Digest] = &bundleBlob{desc: m.Desc, raw: m.Raw}
		}
	}
	for _, img := range imgs {
		for _, b := range img.Blobs {
			if _, ok := all[b.Digest]; ok {
				continue
			}
			if since != nil && since.HasBlob(b.Digest) {
				skipped++
				all[b.Digest] = nil
				continue
			}
			all[b.Digest] = &bundleBlob{desc: b, repo: img.Repo}
		}
	}
	var out []bundleBlob
	for _, b := range all {
		if b != nil {
			out = append(out, *b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].desc.Digest.String() < out[j].desc.Digest.String() })
	return out, skipped
}

// writeBundle writes the archive: oci-layout, index.json, the blobs
// directories, then blobs in their order, each blob streamed from t and
// checked; into a temporary file renamed to file once complete. It
// returns the archive's sha256 and size.
func writeBundle(ctx context.Context, t *registry.Target, file string, index []byte, blobs []bundleBlob, m *meter) (string, int64, error) {
	w, err := newAtomicFile(file)
	if err != nil {
		return "", 0, err
	}
	defer w.abort()
	tw := tar.NewWriter(w)
	layout, _ := json.Marshal(map[string]string{"imageLayoutVersion": "1.0.0"})
	if err := writeEntry(tw, "oci-layout", layout); err != nil {
		return "", 0, err
	}
	if err := writeEntry(tw, "index.json", index); err != nil {
		return "", 0, err
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch, Format: tar.FormatUSTAR}); err != nil {
			return "", 0, err
		}
	}
	openers := map[string]opener{}
	for _, b := range blobs {
		name := "blobs/sha256/" + b.desc.Digest.Hex
		if b.raw != nil {
			if err := writeEntry(tw, name, b.raw); err != nil {
				return "", 0, err
			}
			continue
		}
		open := openers[b.repo]
		if open == nil {
			if open, err = registryBlobs(ctx, t, b.repo, true); err != nil {
				return "", 0, err
			}
			openers[b.repo] = open
		}
		rc, err := open(ctx, b.desc)
		if err != nil {
			return "", 0, err
		}
		if err := tw.WriteHeader(fileHeader(name, b.desc.Size)); err != nil {
			rc.Close()
			return "", 0, err
		}
		_, err = io.Copy(tw, &progressReader{rc: rc, m: m})
		rc.Close()
		if err != nil {
			return "", 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return "", 0, err
	}
	return w.commit()
}

// bundleIndex is the index.json of imgs: one entry per tag (ref.name
// "<name>:<tag>") and one per referrer (no ref.name), each naming its
// image, in a fixed order.
func bundleIndex(imgs []*Image, differential bool) ([]byte, error) {
	kind := "full"
	if differential {
		kind = "differential"
	}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Annotations: map[string]string{BundleAnnotation: kind}}
	for _, img := range imgs {
		tags := append([]Tag(nil), img.Tags...)
		sort.Slice(tags, func(i, j int) bool { return tags[i].Name < tags[j].Name })
		for _, tg := range tags {
			idx.Manifests = append(idx.Manifests, v1.Descriptor{MediaType: tg.Desc.MediaType, Digest: tg.Desc.Digest, Size: tg.Desc.Size,
				Annotations: map[string]string{RefNameAnnotation: img.Name + ":" + tg.Name, ImageAnnotation: img.Name}})
		}
		var refs []v1.Descriptor
		for _, m := range img.Manifests {
			if m.Subject != nil {
				refs = append(refs, v1.Descriptor{MediaType: m.Desc.MediaType, Digest: m.Desc.Digest, Size: m.Desc.Size,
					Annotations: map[string]string{ImageAnnotation: img.Name}})
			}
		}
		sort.Slice(refs, func(i, j int) bool { return refs[i].Digest.String() < refs[j].Digest.String() })
		idx.Manifests = append(idx.Manifests, refs...)
	}
	if len(idx.Manifests) > ocilayout.MaxIndexEntries {
		return nil, fmt.Errorf("the bundle would list %d tags and referrers; at most %d fit in one (select fewer images or tags)", len(idx.Manifests), ocilayout.MaxIndexEntries)
	}
	return json.Marshal(idx)
}

func fileHeader(name string, size int64) *tar.Header {
	h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: epoch}
	if size < 1<<33 { // ustar holds sizes below 8 GiB
		h.Format = tar.FormatUSTAR
	} else {
		h.Format = tar.FormatPAX
	}
	return h
}

func writeEntry(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(fileHeader(name, int64(len(data)))); err != nil {
		return err
	}
	_, err := io.Copy(tw, bytes.NewReader(data))
	return err
}

// atomicFile is a temporary file beside the final one, hashed as it is
// written, renamed into place by commit and removed by abort.
type atomicFile struct {
	final string
	f     *os.File
	h     hash.Hash
	n     int64
	done  bool
}

func newAtomicFile(final string) (*atomicFile, error) {
	dir, base := filepath.Split(final)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("--output %s: %w", final, err)
	}
	return &atomicFile{final: final, f: f, h: sha256.New()}, nil
}

func (a *atomicFile) Write(p []byte) (int, error) {
	n, err := a.f.Write(p)
	a.h.Write(p[:n])
	a.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("writing %s: %w", a.final, err)
	}
	return n, nil
}

// fail removes the temporary file and returns err.
func (a *atomicFile) fail(err error) error {
	a.abort()
	return err
}

func (a *atomicFile) abort() {
	if a.done {
		return
	}
	a.done = true
	a.f.Close()
	os.Remove(a.f.Name())
}

// commit syncs the file, renames it into place and returns its sha256
// and size.
func (a *atomicFile) commit() (string, int64, error) {
	if err := a.f.Sync(); err != nil {
		return "", 0, a.fail(fmt.Errorf("writing %s: %w", a.final, err))
	}
	if err := a.f.Chmod(0o644); err != nil {
		return "", 0, a.fail(err)
	}
	if err := a.f.Close(); err != nil {
		return "", 0, a.fail(fmt.Errorf("writing %s: %w", a.final, err))
	}
	if err := os.Rename(a.f.Name(), a.final); err != nil {
		a.done = true
		os.Remove(a.f.Name())
		return "", 0, fmt.Errorf("--output %s: %w", a.final, err)
	}
	a.done = true
	return hex.EncodeToString(a.h.Sum(nil)), a.n, nil
}

// errNotBundle says an archive is an OCI layout but not a bundle.
var errNotBundle = errors.New("not a bundle written by export")

func isBundleIndex(im *v1.IndexManifest) bool {
	k := im.Annotations[BundleAnnotation]
	return k == "full" || k == "differential"
}

// splitRefName splits a bundle ref.name, "<name>:<tag>".
func splitRefName(s string) (string, string, bool) {
	i := strings.LastIndex(s, ":")
	if i <= 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}
