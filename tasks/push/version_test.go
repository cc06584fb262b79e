package push

import (
	"strings"
	"testing"
	"time"
)

// The version strategy tags the version as it is when it is a valid tag,
// sanitised with a note when it is not, and refuses a version that
// sanitising would cut at the start ("../../x" silently became "x").
func TestVersionStrategy(t *testing.T) {
	for _, c := range []struct {
		version, tag, note, err string
	}{
		{"1.2.3", "1.2.3", "", ""},
		{"v2.0-rc1", "v2.0-rc1", "", ""},
		{"1.2.3+git0+abcdef", "1.2.3-git0-abcdef", `"1.2.3+git0+abcdef" is not a valid tag; tagged "1.2.3-git0-abcdef"`, ""},
		{"", "", "no version given", ""},
		{"../../x", "", "", `version "../../x" does not start with a letter or digit; refusing to tag it "x"`},
		{"-rc1", "", "", "does not start with a letter or digit"},
		{"/etc/passwd", "", "", "does not start with a letter or digit"},
	} {
		ts, err := ComputeTags(TagInput{Strategies: []string{"version"}, Version: c.version, Now: time.Now()})
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.version, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.version, err)
			continue
		}
		if got := strings.Join(ts.Tags, " "); got != c.tag {
			t.Errorf("%q: tags %q, want %q", c.version, got, c.tag)
		}
		if notes := strings.Join(ts.Notes, "\n"); (c.note == "") != (notes == "") || !strings.Contains(notes, c.note) {
			t.Errorf("%q: notes %q, want %q", c.version, notes, c.note)
		}
	}
}
