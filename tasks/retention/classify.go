package retention

import (
	"regexp"
	"strings"
	"time"

	"github.com/ocireg-tool/ocireg-tool/tasks/imageref"
	"github.com/ocireg-tool/ocireg-tool/tasks/platform"
)

// Kind is what a tag is to the policy.
type Kind string

// The kinds of tags. Build tags (timestamp, sha, version) name one build
// and may be pruned; every other kind is never pruned and keeps its build.
const (
	// KindTimestamp is the timestamp strategy's YYYYMMDD-HHMMSS (a valid
	// date and time: 20261340-000000 is not one).
	KindTimestamp Kind = "timestamp"
	// KindSha is the sha/git strategy's short commit: 7 to 40 lowercase
	// hex digits.
	KindSha Kind = "sha"
	// KindVersion is a full version: a digit first, at least two dots
	// (1.2.3, 1.2.3-rc1, 1.2.3.4), or one dot and a suffix (1.0-r0,
	// 2.1_git).
	KindVersion Kind = "version"
	// KindMoving is a partial version (1, 1.2) that the semver strategy
	// moves to the newest build of its line, like latest.
	KindMoving Kind = "moving version"
	// KindSignature is a cosign-style signature, attestation or SBOM tag
	// (*.sig, *.att, *.sbom).
	KindSignature Kind = "signature"
	// KindReferrers is the referrers fallback tag sha256-<hex> of the
	// distribution-spec.
	KindReferrers Kind = "referrers"
	// KindOther is every other valid tag: latest, branch names, names
	// given with --tag.
	KindOther Kind = "other"
	// KindArch is an arch-suffixed tag ("<tag>-<arch>") of a tag of the
	// same repository: it goes and stays with that tag's build.
	KindArch Kind = "arch"
	// KindInvalid is a name the tag grammar refuses (never written by a
	// registry, but storage may hold anything).
	KindInvalid Kind = "invalid"
)

// Build reports whether k is a build tag of ours.
func (k Kind) Build() bool { return k == KindTimestamp || k == KindSha || k == KindVersion }

var (
	timestampRe = regexp.MustCompile(`^[0-9]{8}-[0-9]{6}$`)
	shaRe       = regexp.MustCompile(`^[0-9a-f]{7,40}$`)
	versionRe   = regexp.MustCompile(`^[0-9]+(\.[0-9]+)+([-_.+~][0-9A-Za-z][0-9A-Za-z._-]*)?$`)
	movingRe    = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
	referrersRe = regexp.MustCompile(`^sha256-[0-9a-f]{64}$`)
)

// timestampLayout is the timestamp strategy's format (tasks/push).
const timestampLayout = "20060102-150405"

// Classify says what kind of tag tag is and, for a timestamp tag, its
// time (in the local zone, as push wrote it).
func Classify(tag string) (Kind, time.Time) {
	if imageref.ValidateTag(tag) != nil {
		return KindInvalid, time.Time{}
	}
	switch {
	case strings.HasSuffix(tag, ".sig") || strings.HasSuffix(tag, ".att") || strings.HasSuffix(tag, ".sbom"):
		return KindSignature, time.Time{}
	case referrersRe.MatchString(tag) || strings.HasPrefix(tag, "sha256-"):
		return KindReferrers, time.Time{}
	case timestampRe.MatchString(tag):
		if t, err := time.ParseInLocation(timestampLayout, tag, time.Local); err == nil {
			return KindTimestamp, t
		}
		return KindOther, time.Time{}
	case shaRe.MatchString(tag):
		return KindSha, time.Time{}
	case movingRe.MatchString(tag):
		return KindMoving, time.Time{}
	case versionRe.MatchString(tag):
		return KindVersion, time.Time{}
	}
	return KindOther, time.Time{}
}

// archBase returns the tag an arch-suffixed tag ("<tag>-<arch>") was made
// for, when tag ends in an architecture and that tag is among tags.
func archBase(tag string, tags map[string]bool) (string, bool) {
	i := strings.LastIndexByte(tag, '-')
	if i <= 0 || !platform.IsArchName(tag[i+1:]) {
		return "", false
	}
	base := tag[:i]
	return base, tags[base]
}
