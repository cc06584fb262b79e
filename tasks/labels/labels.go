// Package labels computes the build-time OCI labels that
// meta-virtualization's container-registry class documents ("Build-Time
// OCI Labels") and writes them into OCI image layouts.
//
// Compute decides which labels an image gets from bitbake variables and the
// git repository of TOPDIR; Apply rewrites the image configurations of an OCI
// layout (directory or tar archive) to carry them. Nothing here talks to a
// registry.
package labels

import (
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/gitinfo"
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
func Compute(c *config.Config, now time.Time) (Labels, error) {
	if !c.Labels.Auto {
		return Labels{}, nil
	}
	out := Labels{}
	revision, branch := c.Labels.Revision, c.Labels.Branch
	if revision == "" || branch == "" {
		head, err := gitinfo.Read(c.TopDir)
		if err != nil && !errors.Is(err, gitinfo.ErrNoRepository) {
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
	switch {
	case c.Labels.NoCreated:
	case c.Labels.Created.IsZero():
		out[Created] = now.UTC().Format(time.RFC3339)
	default:
		out[Created] = c.Labels.Created.UTC().Format(time.RFC3339)
	}
	if meaningfulVersion(c.PV) {
		out[Version] = c.PV
	}
	return out, nil
}

// placeholderVersions are PV values that say nothing about the image:
// bitbake's default and its zero.
var placeholderVersions = map[string]bool{"": true, "1.0": true, "0.0": true, Disabled: true}

func meaningfulVersion(pv string) bool {
	return !placeholderVersions[pv] && !strings.Contains(pv, "AUTOINC") && !strings.Contains(pv, "${")
}
