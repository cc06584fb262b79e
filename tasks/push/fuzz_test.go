package push

import (
	"strings"
	"testing"
	"time"

	"github.com/ocireg-tool/ocireg-tool/tasks/imageref"
)

// FuzzTagExpansion: strategy expansion never panics and every tag it
// produces (from any version string or branch-like text) is a valid OCI tag.
func FuzzTagExpansion(f *testing.F) {
	f.Add("semver latest", "1.2.3")
	f.Add("version timestamp", "1.2.3+git0+abcdef")
	f.Add("semver", "v2.0.0-rc.1")
	f.Add("sha branch latest arch", "")
	f.Add("latest", "feature/login_page")
	f.Add("semver version", "...")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, strategy, version string) {
		for _, tag := range append(SemverTags(version), imageref.SanitizeTag(version)) {
			if tag == "" {
				continue
			}
			if err := imageref.ValidateTag(tag); err != nil {
				t.Fatalf("version %q gives invalid tag: %v", version, err)
			}
		}
		ts, err := ComputeTags(TagInput{Strategies: strings.Fields(strategy), Version: version, Now: time.Unix(1767225600, 0), GitDir: dir})
		if err != nil {
			return
		}
		for _, tag := range ts.Tags {
			if err := imageref.ValidateTag(tag); err != nil {
				t.Fatalf("strategy %q version %q: %v", strategy, version, err)
			}
		}
	})
}
