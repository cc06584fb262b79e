package gc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"sync"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/ocireg-tool/ocireg-tool/tasks/referrers"
	"github.com/ocireg-tool/ocireg-tool/tasks/regstore"
	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
)

// The mark and sweep. It decides what distribution's MarkAndSweep decides,
// on the same storage layout and with distribution's own Vacuum for every
// removal, made aware of referrers and of pushes in flight, and reads less:
// a manifest's blob is read once (distribution reads it, then asks whether
// each of its layers is a manifest), layer links are judged by their
// directory name (distribution reads each link file), and repositories are
// read scanWorkers at a time (an object store answers each read after a
// round trip).

// scanWorkers is how many repositories are read at once.
const scanWorkers = 4

// maxManifestRead bounds the manifest blob gc reads (distribution refuses
// larger manifests at push): a larger one keeps nothing alive, and verify
// reports it.
const maxManifestRead = 4 << 20

// gcManifest is what gc needs of one stored manifest.
type gcManifest struct {
	subject  digest.Digest
	refs     []digest.Digest // config, layers and index entries
	children []digest.Digest // entries of an index
}

// repoManifests are the manifests of one repository and its tags.
type repoManifests struct {
	all    map[digest.Digest]gcManifest
	tagged []digest.Digest
	tags   []string
	// sigs are the signature and attestation tags (sha256-<hex>.sig,
	// .att): not roots, they live with the manifest they sign (see live).
	sigs []sigTag
}

// sigTag is a signature tag, the manifest it signs and its own manifest.
type sigTag struct {
	tag              string
	signed, manifest digest.Digest
}

// scanManifests reads every manifest and tag of every repository.
func scanManifests(ctx context.Context, d driver.StorageDriver, reg distribution.Namespace) (map[string]*repoManifests, error) {
	var names []string
	err := reg.(distribution.RepositoryEnumerator).Enumerate(ctx, func(name string) error {
		names = append(names, name)
		return nil
	})
	if err != nil && !regstore.IsNotFound(err) {
		return nil, err
	}
	out := map[string]*repoManifests{}
	var mu sync.Mutex
	var first error
	next := make(chan string)
	var wg sync.WaitGroup
	for range min(scanWorkers, len(names)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range next {
				rm, err := scanRepository(ctx, d, reg, name)
				mu.Lock()
				if err != nil && first == nil {
					first = fmt.Errorf("reading the manifests of %s: %w", name, err)
				}
				out[name] = rm
				mu.Unlock()
			}
		}()
	}
	for _, n := range names {
		next <- n
	}
	close(next)
	wg.Wait()
	return out, first
}

// scanRepository reads the manifests and tags of repository name.
func scanRepository(ctx context.Context, d driver.StorageDriver, reg distribution.Namespace, name string) (*repoManifests, error) {
	rm := &repoManifests{all: map[digest.Digest]gcManifest{}}
	revs, err := listLinked(ctx, d, path.Join(regstore.Repository(name), "_manifests/revisions"))
	if err != nil {
		return nil, err
	}
	for _, dg := range revs {
		if m, ok := readManifest(ctx, d, dg); ok {
			rm.all[dg] = m
		}
	}
	named, err := reference.WithName(name)
	if err != nil {
		return nil, err
	}
	repo, err := reg.Repository(ctx, named)
	if err != nil {
		return nil, err
	}
	tags, err := repo.Tags(ctx).All(ctx)
	if err != nil {
		return rm, nil // no tags
	}
	rm.tags = tags
	for _, tag := range tags {
		desc, err := repo.Tags(ctx).Get(ctx, tag)
		if err != nil {
			continue
		}
		if signed, ok := sign.IsAttachedTag(tag); ok {
			rm.sigs = append(rm.sigs, sigTag{tag: tag, signed: digest.Digest(signed.String()), manifest: desc.Digest})
			continue
		}
		rm.tagged = append(rm.tagged, desc.Digest)
	}
	return rm, nil
}

// readManifest reads the manifest blob dg. A manifest that does not read
// or parse keeps nothing alive; verify reports it.
func readManifest(ctx context.Context, d driver.StorageDriver, dg digest.Digest) (gcManifest, bool) {
	rc, err := d.Reader(ctx, regstore.BlobData(dg.Algorithm().String(), dg.Encoded()), 0)
	if err != nil {
		return gcManifest{}, false
	}
	defer rc.Close()
	payload, err := io.ReadAll(io.LimitReader(rc, maxManifestRead+1))
	if err != nil || len(payload) > maxManifestRead {
		return gcManifest{}, false
	}
	type desc struct {
		Digest digest.Digest `json:"digest"`
	}
	var m struct {
		MediaType string `json:"mediaType"`
		Config    *desc  `json:"config"`
		Layers    []desc `json:"layers"`
		Manifests []desc `json:"manifests"`
		Subject   *desc  `json:"subject"`
		FSLayers  []struct {
			BlobSum digest.Digest `json:"blobSum"`
		} `json:"fsLayers"`
	}
	if json.Unmarshal(payload, &m) != nil {
		return gcManifest{}, false
	}
	var gm gcManifest
	if info, err := referrers.Parse(m.MediaType, payload, dg); err == nil {
		gm.subject = info.Subject
	}
	if m.Config != nil {
		gm.refs = append(gm.refs, m.Config.Digest)
	}
	for _, l := range m.Layers {
		gm.refs = append(gm.refs, l.Digest)
	}
	for _, l := range m.FSLayers {
		gm.refs = append(gm.refs, l.BlobSum)
	}
	for _, c := range m.Manifests {
		gm.refs = append(gm.refs, c.Digest)
		gm.children = append(gm.children, c.Digest)
	}
	return gm, true
}

// listLinked lists the digests linked as <dir>/<algorithm>/<encoded>/link:
// manifest revisions and layer links of a repository. A directory without
// its link is one distribution unlinked (a deleted manifest, a removed
// layer link).
func listLinked(ctx context.Context, d driver.StorageDriver, dir string) ([]digest.Digest, error) {
	all, err := listDigests(ctx, d, dir)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, dg := range all {
		_, err := d.Stat(ctx, path.Join(dir, dg.Algorithm().String(), dg.Encoded(), "link"))
		switch {
		case err == nil:
			out = append(out, dg)
		case !regstore.IsNotFound(err):
			return nil, err
		}
	}
	return out, nil
}

// listDigests lists the digests stored as <dir>/<algorithm>/<encoded>/.
func listDigests(ctx context.Context, d driver.StorageDriver, dir string) ([]digest.Digest, error) {
	algs, err := list(ctx, d, dir)
	if err != nil {
		return nil, err
	}
	var out []digest.Digest
	for _, a := range algs {
		entries, err := list(ctx, d, a)
		if err != nil {
			return nil, err
		}
		out = digestsIn(out, path.Base(a), entries)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// listBlobs lists every blob of the storage (blobs/<algorithm>/<xx>/<encoded>).
func listBlobs(ctx context.Context, d driver.StorageDriver) ([]digest.Digest, error) {
	algs, err := list(ctx, d, regstore.Blobs)
	if err != nil {
		return nil, err
	}
	var out []digest.Digest
	for _, a := range algs {
		prefixes, err := list(ctx, d, a)
		if err != nil {
			return nil, err
		}
		for _, p := range prefixes {
			entries, err := list(ctx, d, p)
			if err != nil {
				return nil, err
			}
			out = digestsIn(out, path.Base(a), entries)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// list lists dir; a directory that does not exist holds nothing.
func list(ctx context.Context, d driver.StorageDriver, dir string) ([]string, error) {
	entries, err := d.List(ctx, dir)
	if regstore.IsNotFound(err) {
		return nil, nil
	}
	return entries, err
}

// digestsIn appends to out the valid digests of algorithm alg that the
// last elements of paths name.
func digestsIn(out []digest.Digest, alg string, paths []string) []digest.Digest {
	for _, p := range paths {
		if dg := digest.NewDigestFromEncoded(digest.Algorithm(alg), path.Base(p)); dg.Validate() == nil {
			out = append(out, dg)
		}
	}
	return out
}

// markAndSweep marks what the manifests kept reference and removes the
// rest: untagged manifests (with removeUntagged) that neither a tag, a
// live subject nor a push in flight reaches, the layer links and the blobs
// nothing marked. Removals go through r (recorded, and done unless dry).
func (r *recordingDriver) markAndSweep(ctx context.Context, scan map[string]*repoManifests, o Options) error {
	marked := map[digest.Digest]bool{}
	type manifestDel struct {
		repo string
		dg   digest.Digest
	}
	var untagged []manifestDel
	var sigsGone []manifestDel // signature tags of manifests that go
	repos := make([]string, 0, len(scan))
	for name := range scan {
		repos = append(repos, name)
	}
	sort.Strings(repos)
	for _, name := range repos {
		rm := scan[name]
		var live map[digest.Digest]bool
		if o.RemoveUntagged {
			live = rm.live(o.InUse)
			for _, st := range rm.sigs {
				if !live[st.signed] {
					sigsGone = append(sigsGone, manifestDel{name, digest.Digest(st.tag)})
				}
			}
		}
		for dg, m := range rm.all {
			if o.RemoveUntagged && !live[dg] {
				untagged = append(untagged, manifestDel{name, dg})
				continue
			}
			marked[dg] = true
			for _, ref := range m.refs {
				marked[ref] = true
			}
		}
	}
	sort.Slice(untagged, func(i, j int) bool {
		if untagged[i].repo != untagged[j].repo {
			return untagged[i].repo < untagged[j].repo
		}
		return untagged[i].dg < untagged[j].dg
	})
	// A signature goes with the manifest it signs: its tag first, so that
	// no tag ever names a removed manifest; its manifest is then untagged
	// and not live, and goes below.
	gone := map[string]map[string]bool{}
	for _, sg := range sigsGone {
		if err := r.Delete(ctx, regstore.Tag(sg.repo, string(sg.dg))); err != nil {
			return fmt.Errorf("removing the signature tag %s:%s: %w", sg.repo, sg.dg, err)
		}
		if gone[sg.repo] == nil {
			gone[sg.repo] = map[string]bool{}
		}
		gone[sg.repo][string(sg.dg)] = true
	}
	vacuum := storage.NewVacuum(ctx, r)
	for _, u := range untagged {
		// A manifest another kept manifest references stays (the same
		// digest in another repository).
		if marked[u.dg] {
			continue
		}
		tags := scan[u.repo].tags
		if g := gone[u.repo]; len(g) > 0 {
			tags = slices.DeleteFunc(slices.Clone(tags), func(t string) bool { return g[t] })
		}
		if err := vacuum.RemoveManifest(u.repo, u.dg, tags); err != nil {
			return fmt.Errorf("removing manifest %s@%s: %w", u.repo, u.dg, err)
		}
	}
	for _, name := range repos {
		layers, err := listLinked(ctx, r.StorageDriver, path.Join(regstore.Repository(name), "_layers"))
		if err != nil {
			return fmt.Errorf("listing the layer links of %s: %w", name, err)
		}
		for _, dg := range layers {
			if marked[dg] || r.inUse[dg] {
				continue
			}
			if err := vacuum.RemoveLayer(name, dg); err != nil {
				return fmt.Errorf("removing the layer link %s of %s: %w", dg, name, err)
			}
		}
	}
	blobs, err := listBlobs(ctx, r.StorageDriver)
	if err != nil {
		return fmt.Errorf("listing blobs: %w", err)
	}
	for _, dg := range blobs {
		if marked[dg] {
			continue
		}
		if err := vacuum.RemoveBlob(dg.String()); err != nil {
			return fmt.Errorf("removing blob %s: %w", dg, err)
		}
	}
	return nil
}
