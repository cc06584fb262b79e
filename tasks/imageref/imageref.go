// Package imageref is the one place that knows what a repository name and a
// tag may look like, and how free text (a git branch, a version) becomes a
// tag. The grammar is distribution's own (github.com/distribution/reference),
// not a copy of it: what passes here is what the registry accepts. It has
// no side effects.
package imageref

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"
)

// MaxTagLength is the longest tag the grammar allows.
const MaxTagLength = 128

// anchoredTag is distribution's tag grammar, [\w][\w.-]{0,127}, matched
// against the whole string.
var anchoredTag = regexp.MustCompile(`^(?:` + reference.TagRegexp.String() + `)$`)

// ValidateTag checks tag against the tag grammar of OCI distribution.
func ValidateTag(tag string) error {
	if !anchoredTag.MatchString(tag) {
		return fmt.Errorf("invalid tag %q: tags are 1-%d characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'", tag, MaxTagLength)
	}
	return nil
}

// placeholderDomain stands in front of a repository path so that
// reference's parser reads every component of the path as a path component
// (without it, a first component like "Yocto" would be taken for a host).
const placeholderDomain = "localhost"

// ValidateRepository checks a repository path, the part of a reference
// after the registry host ("yocto/container-base"), against distribution's
// grammar: components of lowercase letters and digits joined by '.', '_',
// '__' or runs of '-', separated by single '/', at most 255 characters.
func ValidateRepository(path string) error {
	if path == "" {
		return fmt.Errorf("repository %q: %w", path, reference.ErrNameEmpty)
	}
	named, err := reference.ParseNormalizedNamed(placeholderDomain + "/" + path)
	if err == nil && (!reference.IsNameOnly(named) || reference.Path(named) != path) {
		err = reference.ErrReferenceInvalidFormat
	}
	if errors.Is(err, reference.ErrReferenceInvalidFormat) {
		err = fmt.Errorf("%w: want lowercase letters and digits, separated by '.', '_', '__', '-' or single '/'", err)
	}
	if err != nil {
		return fmt.Errorf("repository %q: %w", path, err)
	}
	return nil
}

// SanitizeTag turns a git branch name or a version into a tag: every
// character but ASCII letters, digits and '.' becomes '-' ("feature/login"
// and "feature_login" both give "feature-login"; "1.0+git" gives
// "1.0-git"), runs of '-' shrink to one, leading '.' and '-' and trailing
// '-' go, and the result is cut to MaxTagLength. The result is a valid tag
// or "" (for text with no letter or digit to keep).
func SanitizeTag(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.':
			b.WriteRune(r)
			dash = false
		case !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimLeft(b.String(), ".-")
	if len(out) > MaxTagLength {
		out = out[:MaxTagLength]
	}
	return strings.TrimRight(out, "-")
}
