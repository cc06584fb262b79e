// Package retention is the retention policy as a primitive: which tags of
// a registry's storage prune removes and why (Decide), a view of the
// storage without them for a dry-run sweep (Without), and their removal
// (Apply). It reads tag names, their links and the links' times through
// the storage driver and distribution's tag service; it never reads a
// manifest. When it may write, and the sweep that frees the bytes, are
// its caller's (package server).
package retention

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/regstore"
)

// MaxTags bounds the tags of one repository a plan reads (each costs a
// link read and a stat); a repository holding more is refused, named.
const MaxTags = 100_000

// Policy is what prune keeps of every image (repository).
type Policy struct {
	// Keep keeps the newest Keep builds; 0: no count limit.
	Keep int `json:"keep"`
	// Days keeps the builds younger than Days days; 0: no age limit.
	Days int `json:"days"`
	// Protect are tag patterns (path.Match) never pruned, with their build.
	Protect []string `json:"protect"`
}

// FromConfig is the policy of the CONTAINER_REGISTRY_RETENTION_* settings.
func FromConfig(c *config.Config) Policy {
	return Policy{Keep: c.Retention.Keep, Days: c.Retention.Days, Protect: slices.Clone(c.Retention.Protect)}
}

// Enabled reports whether the policy prunes anything at all: without a
// count or an age limit every build is kept.
func (p Policy) Enabled() bool { return p.Keep > 0 || p.Days > 0 }

// String says the policy in one line.
func (p Policy) String() string {
	var keep []string
	if p.Keep > 0 {
		keep = append(keep, fmt.Sprintf("the newest %d build%s of every image", p.Keep, plural(p.Keep)))
	}
	if p.Days > 0 {
		keep = append(keep, fmt.Sprintf("every build younger than %d day%s", p.Days, plural(p.Days)))
	}
	s := "off: every build kept"
	if len(keep) > 0 {
		s = "keep " + strings.Join(keep, " and ")
	}
	if len(p.Protect) > 0 {
		s += "; protected: " + strings.Join(p.Protect, " ")
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// protectedBy returns the first pattern of p that tag matches.
func (p Policy) protectedBy(tag string) (string, bool) {
	for _, pat := range p.Protect {
		if ok, _ := path.Match(pat, tag); ok {
			return pat, true
		}
	}
	return "", false
}

// Plan is what the policy keeps and prunes, per repository.
type Plan struct {
	Policy Policy    `json:"policy"`
	Now    time.Time `json:"now"`
	Repos  []Repo    `json:"repositories"`
}

// Repo is the plan of one repository: its builds, newest first.
type Repo struct {
	Name   string  `json:"name"`
	Builds []Build `json:"builds"`
}

// Build is one manifest with the tags that point at it, and the
// arch-suffixed tags made for those tags.
type Build struct {
	Digest digest.Digest `json:"digest"`
	// Time is the newest time of its timestamp tags, else the newest time
	// its tags were written (their links' modification time).
	Time   time.Time `json:"time"`
	Tags   []Tag     `json:"tags"`
	Prune  bool      `json:"prune"`
	Reason string    `json:"reason"`
}

// Tag is one tag of a build and why it stays or goes.
type Tag struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// ArchOf is the tag an arch-suffixed tag was made for ("" otherwise).
	ArchOf string        `json:"arch_of,omitempty"`
	Digest digest.Digest `json:"digest"`
	Reason string        `json:"reason"`
}

// Tags returns the tags of r that go (prune) or stay (!prune), newest
// build first.
func (r Repo) Tags(prune bool) []Tag {
	var out []Tag
	for _, b := range r.Builds {
		if b.Prune == prune {
			out = append(out, b.Tags...)
		}
	}
	return out
}

// Pruned counts the tags the plan removes.
func (p *Plan) Pruned() int {
	n := 0
	for _, r := range p.Repos {
		n += len(r.Tags(true))
	}
	return n
}

// Kept counts the tags the plan keeps.
func (p *Plan) Kept() int {
	n := 0
	for _, r := range p.Repos {
		n += len(r.Tags(false))
	}
	return n
}

// pruned is the set of tag directories the plan removes.
func (p *Plan) pruned() map[string]bool {
	out := map[string]bool{}
	for _, r := range p.Repos {
		for _, t := range r.Tags(true) {
			out[regstore.Tag(r.Name, t.Name)] = true
		}
	}
	return out
}

// Decide reads the tags of repos (every repository when empty) from the
// storage d and applies p as of now. A repository named in repos that
// holds no tag is an error; one holding more than MaxTags tags too.
func Decide(ctx context.Context, d driver.StorageDriver, p Policy, now time.Time, repos []string) (*Plan, error) {
	plan := &Plan{Policy: p, Now: now, Repos: []Repo{}}
	reg, err := storage.NewRegistry(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("opening registry storage: %w", err)
	}
	named := len(repos) > 0
	if !named {
		err := reg.(distribution.RepositoryEnumerator).Enumerate(ctx, func(name string) error {
			repos = append(repos, name)
			return nil
		})
		if err != nil && !regstore.IsNotFound(err) {
			return nil, fmt.Errorf("listing the repositories: %w", err)
		}
	}
	repos = slices.Compact(slices.Sorted(slices.Values(repos)))
	for _, name := range repos {
		r, err := decideRepo(ctx, d, reg, p, now, name)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%s: %w", name, err)
		case r == nil && named:
			return nil, fmt.Errorf("no image %s in the registry", name)
		case r != nil:
			plan.Repos = append(plan.Repos, *r)
		}
	}
	return plan, nil
}

// stored is one tag as read from storage.
type stored struct {
	Tag
	kind    Kind
	time    time.Time // timestamp, else the link's modification time
	archOf  string
	protect string // matching pattern
}

// decideRepo plans one repository; nil when it holds no tag.
func decideRepo(ctx context.Context, d driver.StorageDriver, reg distribution.Namespace, p Policy, now time.Time, name string) (*Repo, error) {
	ref, err := reference.WithName(name)
	if err != nil {
		return nil, err
	}
	repo, err := reg.Repository(ctx, ref)
	if err != nil {
		return nil, err
	}
	ts := repo.Tags(ctx)
	names, err := ts.All(ctx)
	var unknown distribution.ErrRepositoryUnknown
	switch {
	case errors.As(err, &unknown) || regstore.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("listing tags: %w", err)
	case len(names) > MaxTags:
		return nil, fmt.Errorf("%d tags, more than prune reads (%d)", len(names), MaxTags)
	}
	set := map[string]bool{}
	var tags []*stored
	for _, tag := range names {
		desc, err := ts.Get(ctx, tag)
		var tu distribution.ErrTagUnknown
		switch {
		case errors.As(err, &tu) || regstore.IsNotFound(err):
			continue // a tag directory without its link: not a tag
		case err != nil:
			return nil, fmt.Errorf("reading tag %s: %w", tag, err)
		}
		st := &stored{Tag: Tag{Name: tag, Digest: desc.Digest}}
		st.kind, st.time = Classify(tag)
		if st.time.IsZero() {
			fi, err := d.Stat(ctx, regstore.TagCurrentLink(name, tag))
			if err != nil && !regstore.IsNotFound(err) {
				return nil, fmt.Errorf("reading tag %s: %w", tag, err)
			}
			if err == nil {
				st.time = fi.ModTime()
			}
		}
		st.protect, _ = p.protectedBy(tag)
		set[tag] = true
		tags = append(tags, st)
	}
	if len(tags) == 0 {
		return nil, nil
	}
	// Builds: the tags on one digest; an arch tag joins its base tag's.
	byName := map[string]*stored{}
	for _, t := range tags {
		byName[t.Name] = t
	}
	for _, t := range tags {
		if base, ok := archBase(t.Name, set); ok && byName[base] != nil {
			if _, nested := archBase(base, set); !nested {
				t.archOf = base
			}
		}
	}
	builds := map[digest.Digest][]*stored{}
	for _, t := range tags {
		if t.archOf == "" {
			builds[t.Digest] = append(builds[t.Digest], t)
		}
	}
	for _, t := range tags {
		if t.archOf != "" {
			dg := byName[t.archOf].Digest
			builds[dg] = append(builds[dg], t)
		}
	}
	var out []*build
	for dg, members := range builds {
		out = append(out, newBuild(dg, members))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.After(out[j].Time)
		}
		return out[i].Digest < out[j].Digest
	})
	r := &Repo{Name: name, Builds: []Build{}}
	rank := 0
	for _, b := range out {
		b.decide(p, now, &rank)
		r.Builds = append(r.Builds, b.Build)
	}
	return r, nil
}

// build is a Build being decided.
type build struct {
	Build
	tags     []*stored
	hasBuild bool   // one of its own tags is a build tag
	notBuild string // one of its own tags that is not a build tag
	protTag  string // a tag matching a protect pattern
	protPat  string
}

func newBuild(dg digest.Digest, ts []*stored) *build {
	sort.Slice(ts, func(i, j int) bool {
		if (ts[i].archOf == "") != (ts[j].archOf == "") {
			return ts[i].archOf == ""
		}
		return ts[i].Name < ts[j].Name
	})
	b := &build{Build: Build{Digest: dg}, tags: ts}
	// Its time: the newest of its timestamp tags, else of its links.
	stamped := slices.ContainsFunc(ts, func(t *stored) bool { return t.kind == KindTimestamp && t.archOf == "" })
	for _, t := range ts {
		if (!stamped || t.kind == KindTimestamp && t.archOf == "") && t.time.After(b.Time) {
			b.Time = t.time
		}
		if t.protect != "" && b.protTag == "" {
			b.protTag, b.protPat = t.Name, t.protect
		}
		if t.archOf != "" {
			continue
		}
		if t.kind.Build() {
			b.hasBuild = true
		} else if b.notBuild == "" {
			b.notBuild = t.Name
		}
	}
	return b
}

// decide keeps or prunes b, the *rank-th of the repository's builds with
// a build tag, newest first.
func (b *build) decide(p Policy, now time.Time, rank *int) {
	inKeep, young := false, false
	if b.hasBuild {
		inKeep = p.Keep > 0 && *rank < p.Keep
		*rank++
	}
	young = p.Days > 0 && b.Time.After(now.Add(-time.Duration(p.Days)*24*time.Hour))
	switch {
	case inKeep:
		b.Reason = fmt.Sprintf("newest %d", p.Keep)
	case young:
		b.Reason = fmt.Sprintf("younger than %d day%s", p.Days, plural(p.Days))
	case b.protTag != "":
		b.Reason = fmt.Sprintf("protected by pattern %s (tag %s)", b.protPat, b.protTag)
	case b.notBuild != "":
		b.Reason = fmt.Sprintf("tag %s is not a build tag", b.notBuild)
	case !p.Enabled():
		b.Reason = "no retention policy"
	default:
		b.Prune = true
		switch {
		case p.Keep > 0 && p.Days > 0:
			b.Reason = fmt.Sprintf("beyond the newest %d and older than %d day%s", p.Keep, p.Days, plural(p.Days))
		case p.Keep > 0:
			b.Reason = fmt.Sprintf("beyond the newest %d", p.Keep)
		default:
			b.Reason = fmt.Sprintf("older than %d day%s", p.Days, plural(p.Days))
		}
	}
	for _, t := range b.tags {
		t.Kind, t.ArchOf, t.Reason = t.kind, t.archOf, b.Reason
		if t.archOf != "" {
			t.Kind = KindArch
		}
		switch {
		case b.Prune:
		case t.protect != "":
			t.Reason = "protected by pattern " + t.protect
		case t.archOf == "" && !t.kind.Build():
			t.Reason = "not a build tag"
		}
		b.Tags = append(b.Tags, t.Tag)
	}
}

// isUnknownTag reports whether err says the tag (or its repository) is
// not stored.
func isUnknownTag(err error, unknown *distribution.ErrTagUnknown) bool {
	var repo distribution.ErrRepositoryUnknown
	return err != nil && (errors.As(err, unknown) || errors.As(err, &repo) || regstore.IsNotFound(err))
}
