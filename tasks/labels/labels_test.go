package labels

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/testgit"
)

var now = time.Date(2026, 1, 12, 20, 32, 24, 0, time.FixedZone("CET", 3600))

func TestComputeRules(t *testing.T) {
	top, sha := testgit.Repo(t, "feature-login")
	build := filepath.Join(top, "build") // TOPDIR below the repository top
	if err := os.MkdirAll(build, 0o755); err != nil {
		t.Fatal(err)
	}
	created := "2026-01-12T19:32:24Z"
	tests := []struct {
		name string
		vars config.Vars
		want Labels
	}{
		{"git repo", config.Vars{"TOPDIR": build},
			Labels{Revision: sha[:7], RefName: "feature-login", Created: created}},
		{"overrides", config.Vars{"TOPDIR": build, "OCI_IMAGE_REVISION": "abc1234def", "OCI_IMAGE_BRANCH": "release/1.x"},
			Labels{Revision: "abc1234def", RefName: "release/1.x", Created: created}},
		{"revision none", config.Vars{"TOPDIR": build, "OCI_IMAGE_REVISION": "none"},
			Labels{RefName: "feature-login", Created: created}},
		{"branch none", config.Vars{"TOPDIR": build, "OCI_IMAGE_BRANCH": "none"},
			Labels{Revision: sha[:7], Created: created}},
		{"build date none", config.Vars{"TOPDIR": build, "OCI_IMAGE_BUILD_DATE": "none"},
			Labels{Revision: sha[:7], RefName: "feature-login"}},
		{"build date RFC 3339", config.Vars{"OCI_IMAGE_BUILD_DATE": "2025-06-01T12:00:00+02:00"},
			Labels{Created: "2025-06-01T10:00:00Z"}},
		{"build date bitbake DATETIME", config.Vars{"OCI_IMAGE_BUILD_DATE": "20250601100000"},
			Labels{Created: "2025-06-01T10:00:00Z"}},
		{"auto labels off", config.Vars{"TOPDIR": build, "PV": "1.2.3", "OCI_IMAGE_REVISION": "abc", "OCI_IMAGE_AUTO_LABELS": "0"},
			Labels{}},
		{"auto labels on explicitly", config.Vars{"OCI_IMAGE_AUTO_LABELS": "1", "PV": "1.2.3"},
			Labels{Created: created, Version: "1.2.3"}},
		{"no repository", config.Vars{"TOPDIR": t.TempDir()},
			Labels{Created: created}},
		{"no TOPDIR", config.Vars{},
			Labels{Created: created}},
		{"version from PV", config.Vars{"PV": "2.0.1"},
			Labels{Created: created, Version: "2.0.1"}},
		{"default PV is not a version", config.Vars{"PV": "1.0"},
			Labels{Created: created}},
		{"AUTOINC PV is not a version", config.Vars{"PV": "1.2+git${SRCPV}"},
			Labels{Created: created}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := computeVars(tc.vars)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestComputeErrors(t *testing.T) {
	for _, vars := range []config.Vars{
		{"OCI_IMAGE_AUTO_LABELS": "maybe"},
		{"OCI_IMAGE_BUILD_DATE": "yesterday"},
	} {
		if _, err := computeVars(vars); err == nil {
			t.Errorf("%v: no error", vars)
		}
	}
}

func TestDetachedHead(t *testing.T) {
	top, sha := testgit.Repo(t, "master")
	testgit.Run(t, top, "checkout", "-q", "--detach", "HEAD")
	got, err := computeVars(config.Vars{"TOPDIR": top, "OCI_IMAGE_BUILD_DATE": "none"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Labels{Revision: sha[:7]}); !reflect.DeepEqual(got, want) {
		t.Errorf("detached HEAD: got %v, want %v (no ref.name)", got, want)
	}
	// An explicit branch still labels a detached build (CI checkouts).
	got, _ = computeVars(config.Vars{"TOPDIR": top, "OCI_IMAGE_BRANCH": "main", "OCI_IMAGE_BUILD_DATE": "none"})
	if got[RefName] != "main" {
		t.Errorf("OCI_IMAGE_BRANCH on a detached HEAD: got %v", got)
	}
}

// computeVars loads vars the way `labels` does and computes the labels at now.
func computeVars(vars config.Vars) (Labels, error) {
	var environ []string
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}
	c, err := config.Load(config.Sources{Environ: environ, Only: config.LabelSettingNames})
	if err != nil {
		return nil, err
	}
	return Compute(c, now)
}
