// Package push uploads the OCI images of Yocto deploy directories to a
// registry: it picks the images (deploy.Discover), computes their tags
// (strategies or explicit), uploads only the blobs the registry lacks, in
// parallel, puts every platform manifest by digest, attaches the build's
// SPDX documents and package list to each as OCI referrers (attach.go),
// and finally writes one OCI image index per tag, merged with the
// platforms already there.
package push

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/testhook"
	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/deploy"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/imageref"
	"github.com/ocireg-tool/ocireg-tool/tasks/platform"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
	"github.com/ocireg-tool/ocireg-tool/tasks/taglock"
)

// Usage is the push command's usage, shown with usage errors.
const Usage = `Usage: container-registry.sh push [image|path] [options]

  push                                   every image of every machine
  push container-base                    one image, all machines
  push tmp/deploy/images/m/x-oci         one OCI layout directory
  push container-base --tag v1.0.0 --tag latest
  push --strategy "sha branch latest"
  push --strategy semver --version 1.2.3`

// Options says what to push and how.
type Options struct {
	// Target is an image name, a path to an OCI layout, or "" for all.
	Target string
	// Images restricts an all-images push to these names (populate's
	// CONTAINER_REGISTRY_IMAGES); names not found are an error.
	Images []string
	// Tags are explicit tags; they need a Target.
	Tags []string
	// Strategy overrides Config.TagStrategy when not empty.
	Strategy string
	// Version overrides IMAGE_VERSION and PV for semver/version.
	Version string
	// Events receives progress (nil: discarded).
	Events events.Sink
	// Progress asks for Progress events while blobs upload (for a bar on
	// a terminal).
	Progress bool
	// Now is the run's timestamp (zero: time.Now()).
	Now time.Time
	// Jobs bounds parallel blob uploads (default 4).
	Jobs int
	// Attach overrides CONTAINER_REGISTRY_ATTACH: false attaches nothing
	// (--no-attach), true the configured kinds or, when the setting says
	// none, the default ones (--attach); nil follows the setting.
	Attach *bool
	// Signer, when set, signs every platform manifest and every tag's
	// index the push writes (CONTAINER_REGISTRY_SIGN); a manifest already
	// signed by its key is left as it is.
	Signer *sign.Signer

	// settle waits before a run checks its tags once more (nil: a timer,
	// settleWait). Tests replace it to see whether and how long a run
	// waits, whatever the machine's speed, and to skip the wait.
	settle func(ctx context.Context, d time.Duration) bool
}

// Summary is what a push did.
type Summary struct {
	Images    int // image names pushed
	Manifests int
	Tags      int
	Uploaded  int64 // bytes sent in blob uploads
	Skipped   int64 // bytes of blobs the registry already had
	Failed    []string
	Elapsed   time.Duration
	// Nothing is true when there was nothing to push; Roots are the
	// directories searched ("" none configured).
	Nothing bool
	Roots   []string
	// Pushed is true when the push ran (there were images); then
	// OlderBuilds, Catalog and the counts above describe it.
	Pushed      bool
	OlderBuilds []deploy.Skipped // found but not the newest build
	// Attached are the build documents attached to the pushed images (or
	// found already attached).
	Attached []Attached
	Catalog  []string // the registry's repositories after the push
	// Repos are the repositories this push wrote tags to, in order.
	Repos []string
	// Signed and SignedAlready count the manifests this push signed and
	// those it found signed by the key (Options.Signer), Attested and
	// AttestedAlready the SPDX documents attested; SigningKey is the key's
	// fingerprint ("" when the push does not sign).
	Signed, SignedAlready     int
	Attested, AttestedAlready int
	SigningKey                string
}

// FailedError says which images failed; each failure was reported as
// an ImageFailed or AttachFailed event.
type FailedError struct{ Names []string }

func (e *FailedError) Error() string {
	return fmt.Sprintf("push failed for: %s", strings.Join(e.Names, ", "))
}

// group is every source of one image name.
type group struct {
	name    string
	sources []*deploy.Source
}

// Push pushes what o selects to t and reports progress as events (see
// events.go). It returns a *tasks.UsageError for misuse, the Target's typed
// errors when the registry is down or refuses the credentials, and a
// *FailedError (with the Summary) when some images failed.
func Push(ctx context.Context, t *registry.Target, o Options) (*Summary, error) {
	start := time.Now()
	o.defaults()
	tagSet, err := resolveTags(t.Config, o)
	if err != nil {
		return nil, err
	}
	// The registry first: with it down, nothing else matters (the
	// original's contract), not even an empty deploy tree.
	if err := t.Ping(ctx); err != nil {
		return nil, err
	}
	groups, res, err := selectSources(ctx, t.Config, o)
	if err != nil && ctx.Err() != nil {
		return nil, stopped(ctx)
	}
	if err != nil {
		return nil, err
	}
	sum := &Summary{Roots: res.Roots}
	for _, b := range res.Broken {
		o.Events.Emit(BrokenBuild{Name: b.Name, Machine: b.Machine, Reason: b.Reason})
		sum.Failed = append(sum.Failed, b.Name+" ("+b.Machine+")")
	}
	if len(groups) == 0 {
		if len(sum.Failed) > 0 {
			return sum, &FailedError{Names: sum.Failed}
		}
		sum.Nothing = true
		return sum, nil
	}
	p, err := newPushRun(ctx, t, o, tagSet, sum)
	if err != nil {
		return nil, err
	}
	defer p.lock.Close()
	o.Events.Emit(Started{URL: t.Config.URL, Namespace: t.Config.Namespace, Tags: tagSet.Tags, Arch: tagSet.Arch, AuthSource: t.AuthSource})
	for _, g := range groups {
		if ctx.Err() != nil {
			break
		}
		if err := p.pushGroup(ctx, g); err != nil {
			o.Events.Emit(ImageFailed{Image: g.name, Err: err})
			sum.Failed = append(sum.Failed, g.name)
			continue
		}
		sum.Images++
	}
	p.waitSigning()
	if ctx.Err() != nil {
		// Stopped (a signal): every tag written so far references content
		// already in the registry; no further tag is written.
		sum.Pushed, sum.OlderBuilds, sum.Elapsed = true, res.Skipped, time.Since(start)
		return sum, stopped(ctx)
	}
	p.verifyTags(ctx)
	sum.Pushed, sum.OlderBuilds, sum.Elapsed = true, res.Skipped, time.Since(start)
	if repos, err := p.puller.Catalog(ctx, t.Registry); err == nil {
		sum.Catalog = repos
	}
	if len(sum.Failed) > 0 {
		return sum, &FailedError{Names: sum.Failed}
	}
	return sum, nil
}

// stopped is the error of a push whose context ended (a signal).
func stopped(ctx context.Context) error {
	return fmt.Errorf("push stopped before it finished: %w", context.Cause(ctx))
}

func (o *Options) defaults() {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.settle == nil {
		o.settle = settleWait
	}
	o.Events = events.Or(o.Events)
}

// resolveTags checks the explicit tags or computes the strategy's: every
// input error surfaces before the first byte goes out.
func resolveTags(c *config.Config, o Options) (*TagSet, error) {
	if len(o.Tags) > 0 && o.Target == "" {
		return nil, &tasks.UsageError{Msg: "--tag requires an image name", Usage: Usage}
	}
	if len(o.Tags) > 0 {
		tagSet := &TagSet{}
		for _, t := range o.Tags {
			if err := imageref.ValidateTag(t); err != nil {
				return nil, &tasks.UsageError{Msg: "--tag: " + err.Error(), Usage: Usage}
			}
			if !slices.Contains(tagSet.Tags, t) {
				tagSet.Tags = append(tagSet.Tags, t)
			}
		}
		return tagSet, nil
	}
	strategies := c.TagStrategy
	if o.Strategy != "" {
		s, err := config.ParseStrategy(o.Strategy)
		if err != nil {
			return nil, &tasks.UsageError{Msg: "--strategy: " + err.Error(), Usage: Usage}
		}
		strategies = s
	}
	gitDir := c.TopDir
	if gitDir == "" {
		gitDir, _ = os.Getwd()
	}
	tagSet, err := ComputeTags(TagInput{Strategies: strategies, Version: firstNonEmpty(o.Version, c.ImageVersion, c.PV), Now: o.Now, GitDir: gitDir})
	if err != nil {
		return nil, &tasks.UsageError{Msg: err.Error(), Usage: Usage}
	}
	for _, n := range tagSet.Notes {
		o.Events.Emit(Note{Text: n})
	}
	if len(tagSet.Tags) == 0 {
		return nil, fmt.Errorf("tag strategy %q gives no tags here; add a strategy such as latest or timestamp", strings.Join(strategies, " "))
	}
	return tagSet, nil
}

// newPushRun sets up the clients of one push: the Target's transport with
// a byte counter, a pusher and a puller sharing it, and the registry's tag
// lock (taglock).
func newPushRun(ctx context.Context, t *registry.Target, o Options, tagSet *TagSet, sum *Summary) (*pushRun, error) {
	counter := &countingTransport{base: t.Transport}
	ropts := t.Options(ctx, remote.WithTransport(counter), remote.WithJobs(o.Jobs))
	pusher, err := remote.NewPusher(ropts...)
	if err != nil {
		return nil, err
	}
	puller, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, err
	}
	c := t.Config
	lock, err := taglock.Open(c)
	if err != nil {
		return nil, err
	}
	return &pushRun{o: o, c: c, t: t, reg: t.Registry, auth: t.Auth, counter: counter, pusher: pusher, puller: puller, sum: sum, tags: tagSet, ropts: ropts, lock: lock}, nil
}

// selectSources discovers the deploy tree (or reads the given path) and
// groups what to push by image name.
func selectSources(ctx context.Context, c *config.Config, o Options) ([]*group, *deploy.Result, error) {
	if o.Target != "" && isPath(o.Target) {
		src, err := deploy.LoadPath(ctx, o.Target)
		if err != nil {
			return nil, nil, err
		}
		return []*group{{name: src.Name, sources: []*deploy.Source{src}}}, &deploy.Result{}, nil
	}
	res, err := deploy.Discover(ctx, c.DeployDirImages, c.DeployDirImage)
	if err != nil {
		return nil, nil, err
	}
	want := o.Images
	if o.Target != "" {
		want = []string{o.Target}
	}
	available := res.Names()
	for _, w := range want {
		if !slices.Contains(available, w) {
			avail := "none"
			if len(available) > 0 {
				avail = strings.Join(available, ", ")
			}
			return nil, nil, fmt.Errorf("no image named %q (not found in %s; available: %s)", w, strings.Join(res.Roots, ", "), avail)
		}
	}
	byName := map[string]*group{}
	var groups []*group
	for _, s := range res.Sources {
		if len(want) > 0 && !slices.Contains(want, s.Name) {
			continue
		}
		g := byName[s.Name]
		if g == nil {
			g = &group{name: s.Name}
			byName[s.Name] = g
			groups = append(groups, g)
		}
		g.sources = append(g.sources, s)
	}
	if len(want) > 0 {
		var broken []deploy.Skipped
		for _, b := range res.Broken {
			if slices.Contains(want, b.Name) {
				broken = append(broken, b)
			}
		}
		res.Broken = broken
	}
	return groups, res, nil
}

// isPath tells a layout path from an image name.
func isPath(s string) bool {
	if strings.ContainsRune(s, '/') || strings.HasPrefix(s, ".") {
		return true
	}
	_, err := os.Stat(filepath.Join(s, "index.json"))
	return err == nil
}

// pushRun is the state of one Push.
type pushRun struct {
	o       Options
	c       *config.Config
	t       *registry.Target
	reg     name.Registry
	auth    authn.Authenticator
	counter *countingTransport
	pusher  *remote.Pusher
	puller  *remote.Puller
	// lock guards the read-modify-writes of tag indexes; when every push
	// to the registry takes it, no settle delay is needed after writing
	// tags.
	lock    *taglock.Lock
	sum     *Summary
	tags    *TagSet
	written []written
	// fallbacks are the referrers tags this run merged into, checked
	// again at the end like written.
	fallbacks []written
	ropts     []remote.Option
	// signed are the manifests (repository@digest) this run has signed,
	// or found signed; signJobs the signatures asked for, signSlots and
	// signWG their background work (sign, waitSigning).
	signed    map[string]bool
	signJobs  []*signJob
	signSlots chan struct{}
	signWG    sync.WaitGroup
	// clients caches one authenticated client per repository: setting one
	// up pings the registry (and may fetch a token).
	clients map[string]*http.Client
}

// client returns the authenticated push client for repo.
func (p *pushRun) client(ctx context.Context, repo name.Repository) (*http.Client, error) {
	if cl, ok := p.clients[repo.String()]; ok {
		return cl, nil
	}
	cl, err := p.t.Client(ctx, repo, transport.PushScope, p.counter)
	if err != nil {
		return nil, err
	}
	if p.clients == nil {
		p.clients = map[string]*http.Client{}
	}
	p.clients[repo.String()] = cl
	return cl, nil
}

// written is a tag this run wrote, checked again at the end.
type written struct {
	group string
	ref   name.Tag
	wants []v1.Descriptor
}

// settleDelay is how long a run waits before checking its tags once more.
const settleDelay = 150 * time.Millisecond

// settleWait waits d; false when ctx ends first.
func settleWait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// verifyTags reads every written tag back once more after a short delay:
// a push from another host that read the tag before this run wrote it
// may have replaced our entries; such a tag is merged again. It is skipped
// when every push to the registry takes the tag lock around its
// read-modify-writes (push.lock of the local registry, redis of
// replicas), so such a push does not pay the delay.
func (p *pushRun) verifyTags(ctx context.Context) {
	if len(p.written)+len(p.fallbacks) == 0 || p.lock.Guards() {
		return
	}
	if !p.o.settle(ctx, settleDelay) {
		return
	}
	p.verifyReferrers(ctx)
	tw := &TagWriter{Pusher: p.pusher, Puller: p.puller, Lock: p.lock}
	for _, w := range p.written {
		ok, err := tw.Holds(ctx, w.ref, w.wants)
		if err == nil && !ok {
			p.o.Events.Emit(Remerged{Tag: w.ref.TagStr()})
			_, err = tw.Write(ctx, w.ref, w.wants, nil)
		}
		if err != nil {
			p.o.Events.Emit(ImageFailed{Image: w.group, Err: err})
			if !slices.Contains(p.sum.Failed, w.group) {
				p.sum.Failed = append(p.sum.Failed, w.group)
			}
		}
	}
}

// storageFull explains a failed upload to the registry served from this
// storage when its file system has less room than the blob: the registry
// itself only reports a broken upload.
func (p *pushRun) storageFull(need int64) string {
	if !p.lock.LocalDisk() {
		return ""
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(p.c.DataDir(), &st); err != nil {
		return ""
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if free >= need {
		return ""
	}
	return fmt.Sprintf(" (no space left on device: the registry storage %s has %s free)", p.c.DataDir(), tasks.HumanBytes(free))
}

// pushGroup pushes every manifest of one image, then writes its tags.
func (p *pushRun) pushGroup(ctx context.Context, g *group) error {
	repo, err := p.t.Repo(g.name)
	if err != nil {
		return fmt.Errorf("image name %q: %w", g.name, err)
	}
	all, err := p.pushManifests(ctx, repo, g)
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
		if err := p.writeTag(ctx, repo, g, tag, all, asIs); err != nil {
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
			if err := p.writeTag(ctx, repo, g, t, []v1.Descriptor{d}, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// pushManifests pushes every platform manifest of g (and attaches its
// documents) and returns their descriptors, one per platform in the order
// first seen; a later build of a platform replaces an earlier one.
func (p *pushRun) pushManifests(ctx context.Context, repo name.Repository, g *group) ([]v1.Descriptor, error) {
	ev := p.o.Events
	byPlatform := map[string]v1.Descriptor{}
	var order []string
	for _, s := range g.sources {
		for _, m := range s.Manifests {
			ev.Emit(ManifestStarted{Image: g.name, Platform: platform.Short(m.Platform), Machine: s.Machine, Dir: s.Dir})
			desc, err := p.pushManifest(ctx, repo, m)
			if err != nil {
				return nil, fmt.Errorf("%s from %s: %w", platform.Short(m.Platform), s.Machine, err)
			}
			ev.Emit(ManifestDone{Digest: desc.Digest})
			p.sign(ctx, repo, g.name, desc.Digest)
			if err := p.attach(ctx, repo, s, desc, platform.Short(m.Platform)); err != nil {
				// The image itself is complete: its tags are still
				// written, the push fails at the end.
				ev.Emit(AttachFailed{Image: g.name, Platform: platform.Short(m.Platform), Err: err})
				if !slices.Contains(p.sum.Failed, g.name) {
					p.sum.Failed = append(p.sum.Failed, g.name)
				}
			}
			key := platform.Key(desc.Platform)
			if _, dup := byPlatform[key]; dup {
				ev.Emit(DuplicateBuild{Image: g.name, Platform: key, Machine: s.Machine})
			} else {
				order = append(order, key)
			}
			byPlatform[key] = desc
		}
	}
	all := make([]v1.Descriptor, 0, len(order))
	for _, k := range order {
		all = append(all, byPlatform[k])
	}
	return all, nil
}

// writeTag writes tag of repo as an index of wants (or asIs), through the
// TagWriter's merge, and reports it.
func (p *pushRun) writeTag(ctx context.Context, repo name.Repository, g *group, tag string, wants []v1.Descriptor, asIs v1.ImageIndex) error {
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
	if !r.Unchanged {
		p.written = append(p.written, written{group: g.name, ref: ref, wants: wants})
	}
	p.o.Events.Emit(TagWritten{URL: p.c.URL, Repo: repo.RepositoryStr(), Tag: tag, Digest: r.Digest, Platforms: plats, Unchanged: r.Unchanged})
	p.sign(ctx, repo, g.name, r.Digest)
	p.sum.Tags++
	if !slices.Contains(p.sum.Repos, repo.RepositoryStr()) {
		p.sum.Repos = append(p.sum.Repos, repo.RepositoryStr())
	}
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

// pushManifest uploads the blobs of m the registry lacks, in parallel,
// then puts the manifest by digest. It returns the index entry for m.
func (p *pushRun) pushManifest(ctx context.Context, repo name.Repository, m deploy.Manifest) (v1.Descriptor, error) {
	all, err := manifestBlobs(m.Image)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := p.markPresent(ctx, repo, all); err != nil {
		return v1.Descriptor{}, p.storageDown(err)
	}
	var missing []*blob
	var missingBytes, presentBytes int64
	for _, b := range all {
		if b.exists {
			presentBytes += b.size
			continue
		}
		if err := m.Layout.CheckBlob(b.d, b.size); err != nil {
			return v1.Descriptor{}, err
		}
		missing = append(missing, b)
		missingBytes += b.size
	}
	sent, err := p.upload(ctx, repo, missing, missingBytes)
	p.sum.Uploaded += sent
	p.sum.Skipped += presentBytes
	if err != nil {
		return v1.Descriptor{}, err
	}
	p.o.Events.Emit(BlobsDone{Uploaded: len(missing), Sent: sent, Present: len(all) - len(missing), PresentBytes: presentBytes})
	return p.putManifest(ctx, repo, m)
}

// storageDown adds to a server error of a registry on a shared backend
// that the backend is the likely cause (distribution answers 500 when its
// storage fails).
func (p *pushRun) storageDown(err error) error {
	var te *transport.Error
	if !p.c.Backend.S3() || !errors.As(err, &te) || te.StatusCode != http.StatusInternalServerError {
		return err
	}
	return fmt.Errorf("%w (the registry could not read its storage %s; is the S3 endpoint up? The registry log says more)", err, p.c.Backend)
}

// blob is one blob of a manifest and whether the registry has it.
type blob struct {
	l      v1.Layer
	d      v1.Hash
	size   int64
	exists bool
}

// manifestBlobs lists the config and layers of img, each digest once.
func manifestBlobs(img v1.Image) ([]*blob, error) {
	cl, err := partial.ConfigLayer(img)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("layers: %w", err)
	}
	var all []*blob
	seen := map[v1.Hash]bool{}
	for _, l := range append([]v1.Layer{cl}, layers...) {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		if seen[d] {
			continue
		}
		seen[d] = true
		size, err := l.Size()
		if err != nil {
			return nil, err
		}
		all = append(all, &blob{l: l, d: d, size: size})
	}
	return all, nil
}

// markPresent asks the registry for every blob at once: on a re-push these
// HEADs are all the work there is.
func (p *pushRun) markPresent(ctx context.Context, repo name.Repository, all []*blob) error {
	client, err := p.client(ctx, repo)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.o.Jobs)
	for _, b := range all {
		g.Go(func() error {
			ok, err := blobExists(gctx, client, repo, b.d)
			b.exists = ok
			return err
		})
	}
	return g.Wait()
}

// upload sends the missing blobs, o.Jobs at a time, and returns the bytes
// sent.
func (p *pushRun) upload(ctx context.Context, repo name.Repository, missing []*blob, total int64) (int64, error) {
	sentBefore := p.counter.sent.Load()
	stop := p.startProgress(sentBefore, total)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.o.Jobs)
	for _, b := range missing {
		g.Go(func() error {
			if err := p.pusher.Upload(gctx, repo, b.l); err != nil {
				return fmt.Errorf("uploading blob %s: %w%s", b.d, err, p.storageFull(b.size))
			}
			return nil
		})
	}
	err := g.Wait()
	stop()
	return p.counter.sent.Load() - sentBefore, err
}

// putManifest puts m's manifest by digest (no tag points at it yet) unless
// the registry has it, and returns its index entry.
func (p *pushRun) putManifest(ctx context.Context, repo name.Repository, m deploy.Manifest) (v1.Descriptor, error) {
	raw, err := m.Image.RawManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := m.Image.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	ref := repo.Digest(m.Digest.String())
	if _, err := p.puller.Head(ctx, ref); err != nil {
		if !registry.IsNotFound(err) {
			return v1.Descriptor{}, fmt.Errorf("checking manifest: %w", err)
		}
		if err := p.pusher.Put(ctx, ref, rawManifest{data: raw, mt: mt}); err != nil {
			return v1.Descriptor{}, fmt.Errorf("putting manifest: %w", err)
		}
	}
	p.sum.Manifests++
	plat := m.Platform
	return v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: m.Digest, Platform: &plat}, nil
}

// blobExists asks the registry whether repo has blob d. client applies
// the Target's retry policy: distribution 2.8 answers 500 to a HEAD that
// races a concurrent upload of the same blob, and is asked again.
func blobExists(ctx context.Context, client *http.Client, repo name.Repository, d v1.Hash) (bool, error) {
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), d)
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("checking blob %s: %w", d, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("checking blob %s: %w", d, transport.CheckError(resp, http.StatusOK))
}

// startProgress emits Progress events for the uploads of one manifest
// until the returned function is called (only when Options.Progress).
func (p *pushRun) startProgress(base, total int64) func() {
	if !p.o.Progress || total == 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	emit := func(last bool) {
		n := min(p.counter.sent.Load()-base, total)
		p.o.Events.Emit(Progress{Sent: n, Total: total, Rate: float64(n) / time.Since(start).Seconds(), Done: last})
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

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
