package push

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocireg-tool/ocireg-tool/internal/testhook"
	"github.com/ocireg-tool/ocireg-tool/tasks/deploy"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/imageref"
	"github.com/ocireg-tool/ocireg-tool/tasks/platform"
)

// imagesInFlight is how many images of a run are pushed at once, per
// slot of the blob budget: an image waits on the registry between its
// steps (blob checks, uploads, manifests, tags under the lock), and with
// two per slot another image's blobs keep the budget busy meanwhile.
const imagesInFlight = 2

// image is one image (group) being pushed. Its events wait in its
// Recorder until it is done and then go out as one block; what it adds to the
// summary is merged in the order of the images when the run ends. Its
// manifests are pushed concurrently; mu guards what follows it.
type image struct {
	events.Recorder
	g   *group
	ran bool  // pushAll started it (a stopped run leaves the rest)
	err error // why it failed

	mu        sync.Mutex
	failed    bool // something failed (an attachment: its tags are still written)
	manifests int
	tags      int
	uploaded  int64
	skipped   int64
	attached  []Attached
	written   []written
	fallbacks []written
	repo      string // the repository a tag was written to
}

// add runs f on the image's state under its lock.
func (im *image) add(f func(im *image)) {
	im.mu.Lock()
	defer im.mu.Unlock()
	f(im)
}

// pushAll pushes the groups concurrently, len(p.slots)×imagesInFlight
// images at a time; the blob requests of all of them share the run's
// budget (p.slots). A failed image does not stop the others. Each image's
// events are emitted as one block when it is done, in the order the
// images finish; the summary takes them in the order of the groups.
func (p *pushRun) pushAll(ctx context.Context, groups []*group) {
	images := make([]*image, len(groups))
	var total int64
	for i, g := range groups {
		images[i] = &image{g: g}
		total += groupBytes(g)
	}
	stop := p.startProgress(total)
	inFlight := make(chan struct{}, cap(p.slots)*imagesInFlight)
	var wg sync.WaitGroup
dispatch:
	for _, im := range images {
		select {
		case inFlight <- struct{}{}:
		case <-ctx.Done():
			break dispatch
		}
		im.ran = true
		wg.Add(1)
		go func() {
			defer func() { <-inFlight; wg.Done() }()
			if im.err = p.pushGroup(ctx, im); im.err != nil {
				im.Emit(ImageFailed{Image: im.g.name, Err: im.err})
			}
			p.emitMu.Lock()
			defer p.emitMu.Unlock()
			for _, e := range im.Events() {
				p.o.Events.Emit(e)
			}
			im.Reset() // emitted: the run keeps only its counts
		}()
	}
	wg.Wait()
	stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	repos := map[string]bool{}
	for _, im := range images {
		p.sum.Manifests += im.manifests
		p.sum.Tags += im.tags
		p.sum.Uploaded += im.uploaded
		p.sum.Skipped += im.skipped
		p.sum.Attached = append(p.sum.Attached, im.attached...)
		p.written = append(p.written, im.written...)
		p.fallbacks = append(p.fallbacks, im.fallbacks...)
		if im.repo != "" && !repos[im.repo] {
			repos[im.repo] = true
			p.sum.Repos = append(p.sum.Repos, im.repo)
		}
		switch {
		case im.err != nil || im.failed:
			if !slices.Contains(p.sum.Failed, im.g.name) {
				p.sum.Failed = append(p.sum.Failed, im.g.name)
			}
			if im.err == nil {
				p.sum.Images++ // complete but for an attachment, as before
			}
		case im.ran:
			p.sum.Images++
		}
	}
}

// groupBytes is the size of every blob of g's manifests (the progress
// bar's total; a blob shared by two manifests counts twice, as it is
// checked twice).
func groupBytes(g *group) int64 {
	var n int64
	for _, s := range g.sources {
		for _, m := range s.Manifests {
			if all, err := manifestBlobs(m.Image); err == nil {
				for _, b := range all {
					n += b.size
				}
			}
		}
	}
	return n
}

// pushGroup pushes every manifest of one image, then writes its tags.
func (p *pushRun) pushGroup(ctx context.Context, im *image) error {
	g := im.g
	repo, err := p.t.Repo(g.name)
	if err != nil {
		return fmt.Errorf("image name %q: %w", g.name, err)
	}
	all, err := p.pushManifests(ctx, repo, im)
	if err != nil {
		return err
	}
	// One nested multi-arch layout alone is pushed as the index it is.
	var asIs v1.ImageIndex
	if len(g.sources) == 1 {
		asIs = g.sources[0].Index
	}
	testhook.Pause("push-before-index")
	for _, tag := range p.tags.Tags {
		if err := p.writeTag(ctx, repo, im, tag, all, asIs); err != nil {
			return err
		}
	}
	if !p.tags.Arch {
		return nil
	}
	for _, d := range all {
		suffix := p.archSuffix(d.Platform)
		for _, tag := range p.tags.Tags {
			if tag == "latest" {
				continue
			}
			t := tag + "-" + suffix
			if err := imageref.ValidateTag(t); err != nil {
				return err
			}
			if err := p.writeTag(ctx, repo, im, t, []v1.Descriptor{d}, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// pushed is one manifest of an image as pushManifests pushed it.
type pushed struct {
	src    *deploy.Source
	m      deploy.Manifest
	events events.Recorder // the manifest's own events, kept in order
	desc   v1.Descriptor
	err    error
}

// pushManifests pushes every platform manifest of the image (and
// attaches its documents), all at once, and returns their descriptors,
// one per platform in the order first seen; a later build of a platform
// replaces an earlier one. The events of each manifest stay together, in
// the order of the sources.
func (p *pushRun) pushManifests(ctx context.Context, repo name.Repository, im *image) ([]v1.Descriptor, error) {
	g := im.g
	var all []*pushed
	for _, s := range g.sources {
		for _, m := range s.Manifests {
			all = append(all, &pushed{src: s, m: m})
		}
	}
	var wg sync.WaitGroup
	for _, x := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			plat := platform.Short(x.m.Platform)
			ev := &x.events
			ev.Emit(ManifestStarted{Image: g.name, Platform: plat, Machine: x.src.Machine, Dir: x.src.Dir})
			desc, err := p.pushManifest(ctx, repo, x.m, im, ev)
			if err != nil {
				x.err = fmt.Errorf("%s from %s: %w", plat, x.src.Machine, err)
				return
			}
			x.desc = desc
			ev.Emit(ManifestDone{Digest: desc.Digest})
			p.sign(ctx, repo, g.name, desc.Digest)
			if err := p.attach(ctx, repo, x.src, desc, plat, im, ev); err != nil {
				// The image itself is complete: its tags are still
				// written, the push fails at the end.
				ev.Emit(AttachFailed{Image: g.name, Platform: plat, Err: err})
				im.add(func(im *image) { im.failed = true })
			}
		}()
	}
	wg.Wait()
	byPlatform := map[string]v1.Descriptor{}
	var order []string
	for _, x := range all {
		for _, e := range x.events.Events() {
			im.Emit(e)
		}
		if x.err != nil {
			return nil, x.err
		}
		key := platform.Key(x.desc.Platform)
		if _, dup := byPlatform[key]; dup {
			im.Emit(DuplicateBuild{Image: g.name, Platform: key, Machine: x.src.Machine})
		} else {
			order = append(order, key)
		}
		byPlatform[key] = x.desc
	}
	descs := make([]v1.Descriptor, 0, len(order))
	for _, k := range order {
		descs = append(descs, byPlatform[k])
	}
	return descs, nil
}

// writeTag writes tag of repo as an index of wants (or asIs), through the
// TagWriter's merge, and reports it.
func (p *pushRun) writeTag(ctx context.Context, repo name.Repository, im *image, tag string, wants []v1.Descriptor, asIs v1.ImageIndex) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ref := repo.Tag(tag)
	tw := &TagWriter{Pusher: p.pusher, Puller: p.puller, Lock: p.lock}
	r, err := tw.Write(ctx, ref, wants, asIs)
	if err != nil {
		return err
	}
	var plats []string
	for _, e := range r.Entries {
		plats = append(plats, strings.TrimPrefix(platform.Key(e.Platform), "linux/"))
	}
	im.Emit(TagWritten{URL: p.c.URL, Repo: repo.RepositoryStr(), Tag: tag, Digest: r.Digest, Platforms: plats, Unchanged: r.Unchanged})
	p.sign(ctx, repo, im.g.name, r.Digest)
	im.add(func(im *image) {
		if !r.Unchanged {
			im.written = append(im.written, written{group: im.g.name, ref: ref, wants: wants})
		}
		im.tags++
		im.repo = repo.RepositoryStr()
	})
	return nil
}

// archSuffix spells a platform for arch tags the Yocto way (x86_64,
// aarch64, armv7); TARGET_ARCH's own spelling wins for its platform. The
// tag it ends up in is validated like every other tag.
func (p *pushRun) archSuffix(pl *v1.Platform) string {
	if ta := p.c.TargetArch; ta != "" {
		if platform.Normalize(v1.Platform{Architecture: ta}).Architecture == pl.Architecture {
			return ta
		}
	}
	return platform.YoctoArch(pl.Architecture) + pl.Variant
}

// startProgress emits Progress events for the whole push, every 150 ms,
// until the returned function is called (only when Options.Progress):
// the bytes of blobs done (uploaded, or found in the registry) of all
// the images' blobs.
func (p *pushRun) startProgress(total int64) func() {
	if !p.o.Progress || total == 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	emit := func(last bool) {
		n := min(p.done.Load(), total)
		p.o.Events.Emit(Progress{Sent: n, Total: total, Rate: float64(p.sent.Load()) / time.Since(start).Seconds(), Done: last})
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(150 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				emit(true)
				return
			case <-t.C:
				emit(false)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
