// Package labels computes the build-time OCI labels of the seed's
// "Build-Time OCI Labels" section and writes them into OCI image layouts.
//
// Compute decides which labels an image gets from bitbake variables and the
// git repository of TOPDIR; Apply rewrites the image configurations of an OCI
// layout (directory or tar archive) to carry them. Nothing here talks to a
// registry.
package labels

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ocireg-tool/ocireg-tool/generator"
)

// The label keys, from the OCI image specification's annotation keys.
const (
	Revision = "org.opencontainers.image.revision"
	RefName  = "org.opencontainers.image.ref.name"
	Created  = "org.opencontainers.image.created"
	Version  = "org.opencontainers.image.version"
)

// Disabled is the value that switches off one label (OCI_IMAGE_REVISION =
// "none", and so on).
const Disabled = "none"

// Labels maps label keys to values.
type Labels map[string]string

// Keys returns the keys in a stable order.
func (l Labels) Keys() []string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Compute returns the labels for a build described by vars, at time now:
//
//   - revision: OCI_IMAGE_REVISION, else the short commit of the git
//     repository holding TOPDIR (no label outside a repository);
//   - ref.name: OCI_IMAGE_BRANCH, else the checked-out branch (no label on a
//     detached HEAD or outside a repository);
//   - created: OCI_IMAGE_BUILD_DATE (RFC 3339, or bitbake's YYYYmmddHHMMSS),
//     else now; always written as RFC 3339 UTC;
//   - version: PV, unless it is empty or a placeholder ("1.0", "0.0", an
//     AUTOINC or unexpanded value).
//
// A value of "none" drops that label; OCI_IMAGE_AUTO_LABELS = "0" drops them
// all.
func Compute(vars generator.Vars, now time.Time) (Labels, error) {
	get := func(name string) string {
		if v, ok := vars[name]; ok {
			return strings.TrimSpace(v)
		}
		return generator.Defaults[name]
	}
	auto := get("OCI_IMAGE_AUTO_LABELS")
	switch strings.ToLower(auto) {
	case "0", "false", "no", "off":
		return Labels{}, nil
	case "1", "true", "yes", "on", "":
	default:
		return nil, fmt.Errorf("OCI_IMAGE_AUTO_LABELS: %q is not a boolean (use 1 or 0)", auto)
	}

	out := Labels{}
	revision, branch := get("OCI_IMAGE_REVISION"), get("OCI_IMAGE_BRANCH")
	if revision == "" || branch == "" {
		head, err := ReadHead(get("TOPDIR"))
		if err != nil {
			return nil, err
		}
		if revision == "" {
			revision = head.ShortCommit()
		}
		if branch == "" {
			branch = head.Branch
		}
	}
	if revision != "" && revision != Disabled {
		out[Revision] = revision
	}
	if branch != "" && branch != Disabled {
		out[RefName] = branch
	}

	created := get("OCI_IMAGE_BUILD_DATE")
	switch created {
	case Disabled:
	case "":
		out[Created] = now.UTC().Format(time.RFC3339)
	default:
		t, err := parseDate(created)
		if err != nil {
			return nil, fmt.Errorf("OCI_IMAGE_BUILD_DATE: %w", err)
		}
		out[Created] = t.UTC().Format(time.RFC3339)
	}

	if pv := get("PV"); meaningfulVersion(pv) {
		out[Version] = pv
	}
	return out, nil
}

// placeholderVersions are PV values that say nothing about the image:
// bitbake's default and its zero.
var placeholderVersions = map[string]bool{"": true, "1.0": true, "0.0": true, Disabled: true}

func meaningfulVersion(pv string) bool {
	return !placeholderVersions[pv] && !strings.Contains(pv, "AUTOINC") && !strings.Contains(pv, "${")
}

var bitbakeDateRe = regexp.MustCompile(`^[0-9]{14}$`)

// parseDate accepts RFC 3339 and bitbake's DATETIME format (UTC).
func parseDate(s string) (time.Time, error) {
	if bitbakeDateRe.MatchString(s) {
		return time.Parse("20060102150405", s)
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-01-12T20:32:24Z) nor YYYYmmddHHMMSS", s)
	}
	return t, nil
}
