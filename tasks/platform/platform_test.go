package platform

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestNormalize(t *testing.T) {
	cases := []struct {
		in, want v1.Platform
	}{
		{v1.Platform{OS: "linux", Architecture: "x86_64"}, v1.Platform{OS: "linux", Architecture: "amd64"}},
		{v1.Platform{OS: "linux", Architecture: "x86-64"}, v1.Platform{OS: "linux", Architecture: "amd64"}},
		{v1.Platform{OS: "linux", Architecture: "amd64", Variant: "v3"}, v1.Platform{OS: "linux", Architecture: "amd64", Variant: "v3"}},
		{v1.Platform{OS: "linux", Architecture: "i586"}, v1.Platform{OS: "linux", Architecture: "386"}},
		{v1.Platform{OS: "linux", Architecture: "i686"}, v1.Platform{OS: "linux", Architecture: "386"}},
		{v1.Platform{OS: "linux", Architecture: "aarch64"}, v1.Platform{OS: "linux", Architecture: "arm64"}},
		{v1.Platform{OS: "linux", Architecture: "aarch64", Variant: "v8"}, v1.Platform{OS: "linux", Architecture: "arm64"}},
		{v1.Platform{OS: "linux", Architecture: "arm64", Variant: "8"}, v1.Platform{OS: "linux", Architecture: "arm64"}},
		{v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v9"}, v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v9"}},
		// 32-bit arm: variants from the name, bare digits get their "v".
		{v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{v1.Platform{OS: "linux", Architecture: "arm", Variant: "7"}, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{v1.Platform{OS: "linux", Architecture: "arm", Variant: "5"}, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v5"}},
		{v1.Platform{OS: "linux", Architecture: "arm"}, v1.Platform{OS: "linux", Architecture: "arm"}},
		{v1.Platform{OS: "linux", Architecture: "armhf"}, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{v1.Platform{OS: "linux", Architecture: "armel"}, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}},
		{v1.Platform{OS: "linux", Architecture: "armv7l"}, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{v1.Platform{OS: "linux", Architecture: "armv5te"}, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v5"}},
		{v1.Platform{OS: "linux", Architecture: "armv7a", Variant: "v6"}, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}},
		// Other Yocto spellings.
		{v1.Platform{OS: "linux", Architecture: "powerpc64le"}, v1.Platform{OS: "linux", Architecture: "ppc64le"}},
		{v1.Platform{OS: "linux", Architecture: "mips64el"}, v1.Platform{OS: "linux", Architecture: "mips64le"}},
		{v1.Platform{OS: "linux", Architecture: "loongarch64"}, v1.Platform{OS: "linux", Architecture: "loong64"}},
		{v1.Platform{OS: "linux", Architecture: "riscv64"}, v1.Platform{OS: "linux", Architecture: "riscv64"}},
		// Fields beyond OS, architecture, variant and OS version go.
		{v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763", Features: []string{"sse4"}},
			v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763"}},
		{v1.Platform{}, v1.Platform{}},
	}
	for _, c := range cases {
		got := Normalize(c.in)
		if !got.Equals(c.want) || got.Features != nil {
			t.Errorf("Normalize(%+v) = %+v, want %+v", c.in, got, c.want)
		}
		if again := Normalize(got); !again.Equals(got) {
			t.Errorf("Normalize is not idempotent on %+v: %+v", got, again)
		}
	}
}

func TestSpelling(t *testing.T) {
	cases := []struct {
		in              v1.Platform
		str, short, key string
	}{
		{in: v1.Platform{OS: "linux", Architecture: "amd64"}, str: "linux/amd64", short: "amd64", key: "linux/amd64"},
		{in: v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, str: "linux/arm/v7", short: "arm/v7", key: "linux/arm/v7"},
		{in: v1.Platform{OS: "linux", Architecture: "x86_64"}, str: "linux/x86_64", short: "x86_64", key: "linux/amd64"},
		{in: v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0"}, str: "windows/amd64", short: "windows/amd64", key: "windows/amd64"},
		{in: v1.Platform{Architecture: "arm64"}, str: "arm64", short: "arm64", key: "arm64"},
		{in: v1.Platform{OS: "linux", Architecture: "aarch64", Variant: "v8"}, str: "linux/aarch64/v8", short: "aarch64/v8", key: "linux/arm64"},
	}
	for _, c := range cases {
		if got := String(c.in); got != c.str {
			t.Errorf("String(%+v) = %q, want %q", c.in, got, c.str)
		}
		if got := Short(c.in); got != c.short {
			t.Errorf("Short(%+v) = %q, want %q", c.in, got, c.short)
		}
		p := c.in
		if got := Key(&p); got != c.key {
			t.Errorf("Key(%+v) = %q, want %q", c.in, got, c.key)
		}
	}
	if got := Key(nil); got != "" {
		t.Errorf("Key(nil) = %q, want empty", got)
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		in      string
		want    v1.Platform
		wantErr bool
	}{
		{"linux/arm64", v1.Platform{OS: "linux", Architecture: "arm64"}, false},
		{"linux/aarch64", v1.Platform{OS: "linux", Architecture: "arm64"}, false},
		{"linux/arm/v7", v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, false},
		{"linux/armhf", v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, false},
		{" linux/x86_64 ", v1.Platform{OS: "linux", Architecture: "amd64"}, false},
		{"linux", v1.Platform{}, true},
		{"", v1.Platform{}, true},
		{"/amd64", v1.Platform{}, true},
		{"linux/arm/v7/extra", v1.Platform{}, true},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if (err != nil) != c.wantErr {
			t.Errorf("Parse(%q): error %v, want error %v", c.in, err, c.wantErr)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), `"`+c.in+`"`) || !strings.Contains(err.Error(), "OS/ARCH") {
				t.Errorf("Parse(%q): error %q does not quote the input and say the form", c.in, err)
			}
			continue
		}
		if !got.Equals(c.want) {
			t.Errorf("Parse(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestMatches(t *testing.T) {
	arm7 := v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	amd := v1.Platform{OS: "linux", Architecture: "amd64"}
	cases := []struct {
		have, want v1.Platform
		match      bool
	}{
		{amd, amd, true},
		{arm7, v1.Platform{OS: "linux", Architecture: "arm"}, true},
		{arm7, arm7, true},
		{arm7, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, false},
		{v1.Platform{OS: "linux", Architecture: "arm"}, arm7, false},
		{amd, v1.Platform{OS: "windows", Architecture: "amd64"}, false},
		{amd, v1.Platform{OS: "linux", Architecture: "arm64"}, false},
	}
	for _, c := range cases {
		if got := Matches(c.have, c.want); got != c.match {
			t.Errorf("Matches(%s, %s) = %v, want %v", String(c.have), String(c.want), got, c.match)
		}
	}
}

func TestYoctoArch(t *testing.T) {
	cases := map[string]string{
		"amd64":   "x86_64",
		"arm64":   "aarch64",
		"386":     "i686",
		"ppc64le": "powerpc64le",
		"arm":     "arm",
		"riscv64": "riscv64",
		"s390x":   "s390x",
	}
	for in, want := range cases {
		if got := YoctoArch(in); got != want {
			t.Errorf("YoctoArch(%q) = %q, want %q", in, got, want)
		}
	}
	// Every Yocto spelling YoctoArch gives normalises back to where it came from.
	for oci, yocto := range yoctoArch {
		if got := Normalize(v1.Platform{Architecture: yocto}).Architecture; got != oci {
			t.Errorf("Normalize(%q) = %q, want %q", yocto, got, oci)
		}
	}
}

func TestOfConfig(t *testing.T) {
	cases := []struct {
		cf   v1.ConfigFile
		want v1.Platform
	}{
		{v1.ConfigFile{OS: "linux", Architecture: "x86_64"}, v1.Platform{OS: "linux", Architecture: "amd64"}},
		{v1.ConfigFile{OS: "linux", Architecture: "arm", Variant: "7"}, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{v1.ConfigFile{OS: "windows", Architecture: "amd64", OSVersion: "10.0", OSFeatures: []string{"win32k"}}, v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0"}},
		{v1.ConfigFile{}, v1.Platform{}},
	}
	for _, c := range cases {
		if got := OfConfig(&c.cf); !got.Equals(c.want) || got.OSFeatures != nil {
			t.Errorf("OfConfig(%+v) = %+v, want %+v", c.cf, got, c.want)
		}
	}
}

func TestIsArchName(t *testing.T) {
	for s, want := range map[string]bool{
		"x86_64": true, "aarch64": true, "armv7": true, "arm": true, "amd64": true, "arm64v8": true,
		"riscv64": true, "i686": true, "armhf": true, "powerpc64le": true,
		"": false, "r0": false, "143022": false, "v7": false, "rc1": false, "latest": false, "git0": false,
	} {
		if got := IsArchName(s); got != want {
			t.Errorf("IsArchName(%q) = %v, want %v", s, got, want)
		}
	}
}
