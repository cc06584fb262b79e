package push

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/gitinfo"
	"github.com/ocireg-tool/ocireg-tool/tasks/imageref"
)

// TagInput is what tag strategies work from.
type TagInput struct {
	Strategies []string
	Version    string    // --version, IMAGE_VERSION or PV
	Now        time.Time // one timestamp for the whole run
	GitDir     string    // TOPDIR, else the current directory
}

// TagSet is the result of a strategy: tags for every platform, and whether
// arch-suffixed tags are wanted too.
type TagSet struct {
	Tags []string
	// Arch asks for "<tag>-<arch>" per platform for every tag but latest.
	Arch bool
	// Notes say why a strategy gave nothing (no git repo, no version...).
	Notes []string
}

// ComputeTags applies the strategies in order. Unknown words are an
// error; duplicates are dropped; every tag is validated.
func ComputeTags(in TagInput) (*TagSet, error) {
	if _, err := config.ParseStrategy(strings.Join(in.Strategies, " ")); err != nil {
		return nil, fmt.Errorf("tag strategy: %w", err)
	}
	ts := &TagSet{}
	seen := map[string]bool{}
	add := func(tags ...string) {
		for _, t := range tags {
			if t != "" && !seen[t] {
				seen[t] = true
				ts.Tags = append(ts.Tags, t)
			}
		}
	}
	git := sync.OnceValues(func() (gitinfo.Head, error) { return gitinfo.Read(in.GitDir) })
	for _, s := range in.Strategies {
		switch s {
		case "timestamp":
			add(in.Now.Format("20060102-150405"))
		case "sha", "git":
			h, err := git()
			switch {
			case err != nil:
				ts.Notes = append(ts.Notes, gitNote(s, "sha", in.GitDir, err))
			case h.Commit == "":
				ts.Notes = append(ts.Notes, fmt.Sprintf("strategy %s: the repository at %s has no commit yet; no sha tag", s, in.GitDir))
			default:
				add(h.ShortCommit())
			}
		case "branch":
			h, err := git()
			switch {
			case err != nil:
				ts.Notes = append(ts.Notes, gitNote(s, "branch", in.GitDir, err))
			case h.Branch == "":
				ts.Notes = append(ts.Notes, "strategy branch: detached HEAD; no branch tag")
			default:
				add(imageref.SanitizeTag(h.Branch))
			}
		case "semver":
			tags := SemverTags(in.Version)
			if len(tags) == 0 {
				ts.Notes = append(ts.Notes, semverNote(in.Version))
			}
			add(tags...)
		case "version":
			tag, note, err := versionTag(in.Version)
			if err != nil {
				return nil, err
			}
			if note != "" {
				ts.Notes = append(ts.Notes, note)
			}
			add(tag)
		case "latest":
			add("latest")
		case "arch":
			ts.Arch = true
		}
	}
	for _, t := range ts.Tags {
		if err := imageref.ValidateTag(t); err != nil {
			return nil, err
		}
	}
	return ts, nil
}

// gitNote says why strategy gave no tag of kind: dir is outside a
// repository, or its repository could not be read.
func gitNote(strategy, kind, dir string, err error) string {
	if errors.Is(err, gitinfo.ErrNoRepository) {
		return fmt.Sprintf("strategy %s: %s is not in a git repository; no %s tag", strategy, dir, kind)
	}
	return fmt.Sprintf("strategy %s: reading the git repository of %s: %v; no %s tag", strategy, dir, err, kind)
}

// versionTag is the tag of the version strategy: the version itself when
// it is a valid tag, else the version sanitised (1.0+git0 gives 1.0-git0)
// with a note saying so. A version that does not start with a letter or
// digit is refused: sanitising would drop its start ("../../x" would
// silently become "x").
func versionTag(v string) (tag, note string, err error) {
	switch {
	case v == "":
		return "", "strategy version: no version given (--version, IMAGE_VERSION or PV); no version tag", nil
	case imageref.ValidateTag(v) == nil:
		return v, "", nil
	}
	tag = imageref.SanitizeTag(v)
	if r := v[0]; !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
		return "", "", fmt.Errorf("version %q does not start with a letter or digit; refusing to tag it %q", v, tag)
	}
	return tag, fmt.Sprintf("strategy version: %q is not a valid tag; tagged %q", v, tag), nil
}

func semverNote(v string) string {
	if v == "" {
		return "strategy semver: no version given (--version, IMAGE_VERSION or PV); no semver tags"
	}
	return fmt.Sprintf("strategy semver: version %q is not numeric (like 1.2.3); no semver tags", v)
}

var semverRe = regexp.MustCompile(`^v?(\d+(?:\.\d+)*)(-[0-9A-Za-z.-]+)?$`)

// SemverTags nests a version: 1.2.3 gives 1.2.3, 1.2 and 1. Build metadata
// after '+' is dropped (1.2.3+git0+abc is 1.2.3) as is a leading 'v'. A
// pre-release (1.2.3-rc1) gives only itself: it must not move 1.2 or 1.
// Versions that do not start with a number give nothing.
func SemverTags(v string) []string {
	v, _, _ = strings.Cut(strings.TrimSpace(v), "+")
	m := semverRe.FindStringSubmatch(v)
	if m == nil {
		return nil
	}
	if m[2] != "" {
		return []string{m[1] + m[2]}
	}
	parts := strings.Split(m[1], ".")
	var out []string
	for n := len(parts); n >= 1; n-- {
		out = append(out, strings.Join(parts[:n], "."))
	}
	return out
}
