package shellquote

import (
	"os/exec"
	"strings"
	"testing"
	"unicode"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
)

// Word leaves plain words alone, quotes the rest so that bash reads
// back exactly the input, and never lets a control character through.
func TestShellWord(t *testing.T) {
	bash := testtool.Need(t, "bash")
	cases := map[string]string{
		"/srv/build/container-registry":     "/srv/build/container-registry",
		"localhost:5000":                    "localhost:5000",
		"/home/dév/ビルド":                     "/home/dév/ビルド",
		"":                                  "''",
		"/my builds/storage":                "'/my builds/storage'",
		"/x/it's":                           `'/x/it'\''s'`,
		"timestamp latest":                  "'timestamp latest'",
		"~/x":                               "'~/x'",
		"/x/$(reboot)`id`;|&<>*?[]{}!#\"\\": `'/x/$(reboot)` + "`id`" + `;|&<>*?[]{}!#"\'`,
		"/x/\x1b[31mred":                    `$'/x/\e[31mred'`,
		"/x/tab\there":                      `$'/x/tab\there'`,
		"/x/new\nline it's":                 `$'/x/new\nline it\'s'`,
		"/x/\x7f\x01":                       `$'/x/\x7f\x01'`,
		"/x/bad\xff\xfe":                    `$'/x/bad\xff\xfe'`,
		"/x/\u202egnp.exe":                  `$'/x/\u202egnp.exe'`,
		"/x/back\\slash\x1b":                `$'/x/back\\slash\e'`,
		"/x/\x1ba1":                         `$'/x/\ea1'`,
		"/x/\x02ab":                         `$'/x/\x02ab'`,
	}
	for in, want := range cases {
		got := Word(in)
		if got != want {
			t.Errorf("Word(%q) = %s, want %s", in, got, want)
		}
		for _, r := range got {
			if !unicode.IsPrint(r) {
				t.Errorf("Word(%q) = %q holds a character a terminal would not show", in, got)
			}
		}
		out, err := exec.Command(bash, "-c", "printf %s "+got).Output()
		if err != nil || string(out) != in {
			t.Errorf("bash reads %s as %q (%v), want %q", got, out, err, in)
		}
	}
	if got := Words([]string{"/a", "/b c"}); got != "/a '/b c'" {
		t.Errorf("Words: %s", got)
	}
	if strings.Contains(Word("\x1b"), "\x1b") {
		t.Error("ESC passed through")
	}
}
