package imageref

import (
	"errors"
	"strings"
	"testing"

	"github.com/distribution/reference"
)

func TestValidateTag(t *testing.T) {
	cases := []struct {
		tag string
		ok  bool
	}{
		{"latest", true},
		{"v1.0.0", true},
		{"_private", true},
		{"20260112-143022", true},
		{"x86_64", true},
		{"feature-login", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{".hidden", false},
		{"-dash", false},
		{"bad:tag", false},
		{"feature/login", false},
		{"ü", false},
		{"with space", false},
		{"line\nbreak", false},
	}
	for _, c := range cases {
		err := ValidateTag(c.tag)
		if (err == nil) != c.ok {
			t.Errorf("ValidateTag(%q) = %v, want ok=%v", c.tag, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), `invalid tag "`) {
			t.Errorf("ValidateTag(%q): error %q does not name the tag", c.tag, err)
		}
		// The same verdict as distribution's own tag check.
		named, _ := reference.ParseNormalizedNamed("example/repo")
		if _, refErr := reference.WithTag(named, c.tag); (refErr == nil) != c.ok {
			t.Errorf("ValidateTag(%q) disagrees with reference.WithTag (%v)", c.tag, refErr)
		}
	}
}

func TestValidateRepository(t *testing.T) {
	cases := []struct {
		path    string
		wantErr string // "" for valid
	}{
		{"container-base", ""},
		{"yocto/container-base", ""},
		{"yocto/sub/app_server", ""},
		{"a__b", ""},
		{"a---b", ""},
		{"a.b", ""},
		{"localhost", ""},
		{"v2", ""},
		{strings.Repeat("a", 255), ""},
		{strings.Repeat("a", 256), "must not be more than 255 characters"},
		{"", "at least one component"},
		{"Yocto/app", "must be lowercase"},
		{"yocto/UPPER", "must be lowercase"},
		{"a..b", "invalid reference format"},
		{"a//b", "invalid reference format"},
		{"/a", "invalid reference format"},
		{"a/", "invalid reference format"},
		{"-a", "invalid reference format"},
		{"a-", "invalid reference format"},
		{"a___b", "invalid reference format"},
		{"bad name!", "invalid reference format"},
		{"app:latest", "invalid reference format"},
		{"app@sha256:" + strings.Repeat("a", 64), "invalid reference format"},
		{"käse", "invalid reference format"},
	}
	for _, c := range cases {
		err := ValidateRepository(c.path)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("ValidateRepository(%q) = %v, want ok", c.path, err)
		case c.wantErr != "" && err == nil:
			t.Errorf("ValidateRepository(%q) = ok, want an error containing %q", c.path, c.wantErr)
		case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
			t.Errorf("ValidateRepository(%q) = %v, want an error containing %q", c.path, err, c.wantErr)
		case err != nil && !strings.Contains(err.Error(), `repository "`+c.path+`"`):
			t.Errorf("ValidateRepository(%q): error %q does not quote the path", c.path, err)
		}
	}
	if err := ValidateRepository("a//b"); !errors.Is(err, reference.ErrReferenceInvalidFormat) {
		t.Errorf("ValidateRepository(\"a//b\") = %v, want it to wrap reference.ErrReferenceInvalidFormat", err)
	}
}

func TestSanitizeTag(t *testing.T) {
	long := strings.Repeat("b", 130)
	cases := []struct {
		in, want string
	}{
		{"main", "main"},
		{"feature/login", "feature-login"},
		{"feature/login_page", "feature-login-page"},
		{"my_branch", "my-branch"},
		{"release/1.2_fix", "release-1.2-fix"},
		{"1.0+gitAUTOINC", "1.0-gitAUTOINC"},
		{"a//b", "a-b"},
		{"a-_-/b", "a-b"},
		{"-x", "x"},
		{".x", "x"},
		{"._-.x", "x"},
		{"x-", "x"},
		{"x/", "x"},
		{"x.", "x."},
		{"1.2..3", "1.2..3"},
		{"fix/ümlaut", "fix-mlaut"},
		{"ümlaut", "mlaut"},
		{"日本", ""},
		{"///", ""},
		{"", ""},
		{long, long[:128]},
		// Cut at 128, then no trailing '-'.
		{strings.Repeat("a", 127) + "/b", strings.Repeat("a", 127)},
		// Leading characters dropped before the cut.
		{"--" + strings.Repeat("c", 128) + "d", strings.Repeat("c", 128)},
	}
	for _, c := range cases {
		got := SanitizeTag(c.in)
		if got != c.want {
			t.Errorf("SanitizeTag(%q) = %q, want %q", c.in, got, c.want)
		}
		if got != "" {
			if err := ValidateTag(got); err != nil {
				t.Errorf("SanitizeTag(%q) = %q, which is not a tag: %v", c.in, got, err)
			}
		}
	}
}

// FuzzSanitizeTag: whatever the input, the result is "" or a valid tag.
func FuzzSanitizeTag(f *testing.F) {
	for _, s := range []string{"feature/login_page", "1.2.3+git0+abc", "...", "-", "ü/ä", strings.Repeat("x-", 80)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := SanitizeTag(s)
		if got == "" {
			return
		}
		if err := ValidateTag(got); err != nil {
			t.Fatalf("SanitizeTag(%q) = %q: %v", s, got, err)
		}
	})
}
