// Package platform is the one place that spells and normalises image
// platforms. Yocto records architectures the way TARGET_ARCH spells them
// (x86_64, aarch64, i686, ...), registries and clients the way OCI and Go
// do (amd64, arm64, 386, ...); Normalize maps the first onto the second so
// that platforms from deploy layouts, registries and --platform flags
// compare equal, and YoctoArch maps back for arch-suffixed tags. It has no
// side effects.
package platform

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ociArch maps Yocto (TARGET_ARCH) and Debian spellings to OCI ones.
var ociArch = map[string]string{
	"x86_64":      "amd64",
	"x86-64":      "amd64",
	"i386":        "386",
	"i486":        "386",
	"i586":        "386",
	"i686":        "386",
	"aarch64":     "arm64",
	"mipsel":      "mipsle",
	"mips64el":    "mips64le",
	"powerpc64":   "ppc64",
	"powerpc64le": "ppc64le",
	"loongarch64": "loong64",
}

// yoctoArch is the reverse of ociArch, one Yocto spelling per OCI name.
var yoctoArch = map[string]string{
	"amd64":    "x86_64",
	"386":      "i686",
	"arm64":    "aarch64",
	"mipsle":   "mipsel",
	"mips64le": "mips64el",
	"ppc64":    "powerpc64",
	"ppc64le":  "powerpc64le",
	"loong64":  "loongarch64",
}

// armVariant gives the variant implied by a 32-bit arm architecture name
// that carries one (armhf and armel as Debian uses them, armv7l and
// friends as uname and Yocto tunes spell them), and whether arch is such a
// name.
func armVariant(arch string) (string, bool) {
	switch arch {
	case "armhf":
		return "v7", true
	case "armel":
		return "v6", true
	}
	for _, v := range []string{"5", "6", "7"} {
		if strings.HasPrefix(arch, "armv"+v) {
			return "v" + v, true
		}
	}
	return "", false
}

// Normalize returns p with OCI names: x86_64 becomes amd64, aarch64 arm64,
// i?86 386 (and the other Yocto spellings in ociArch); armhf, armel and
// armv5*/armv6*/armv7* become arm with the variant they imply (a variant
// already set is kept); a bare arm variant digit gets its "v" ("7" is
// "v7"); the arm64 variant v8, which every arm64 image has, is dropped.
// Only OS, architecture, variant and OS version are kept.
func Normalize(p v1.Platform) v1.Platform {
	if a, ok := ociArch[p.Architecture]; ok {
		p.Architecture = a
	}
	if v, ok := armVariant(p.Architecture); ok {
		p.Architecture = "arm"
		if p.Variant == "" {
			p.Variant = v
		}
	}
	switch p.Architecture {
	case "arm":
		if len(p.Variant) == 1 && p.Variant >= "5" && p.Variant <= "8" {
			p.Variant = "v" + p.Variant
		}
	case "arm64":
		if p.Variant == "v8" || p.Variant == "8" {
			p.Variant = ""
		}
	}
	return v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, OSVersion: p.OSVersion}
}

// OfConfig is the normalised platform an image config records (OS,
// architecture, variant, OS version); empty fields stay empty.
func OfConfig(cf *v1.ConfigFile) v1.Platform {
	return Normalize(v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant, OSVersion: cf.OSVersion})
}

// String spells p as --platform takes it: os/arch[/variant] ("linux/arm/v7"),
// or arch[/variant] when the OS is not set. The OS version is left out.
func String(p v1.Platform) string {
	s := p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	if p.OS != "" {
		s = p.OS + "/" + s
	}
	return s
}

// Short spells p for messages about Linux images: String without the
// "linux/" every Yocto image has ("amd64", "arm/v7", "windows/amd64").
func Short(p v1.Platform) string {
	return strings.TrimPrefix(String(p), "linux/")
}

// Key identifies a descriptor's platform for merging index entries: the
// String of its normalised platform, "" when there is none.
func Key(p *v1.Platform) string {
	if p == nil {
		return ""
	}
	return String(Normalize(*p))
}

// Parse reads os/arch[/variant] ("linux/arm64") and normalises it; the OS
// and the architecture are required.
func Parse(s string) (v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, fmt.Errorf("%q: want OS/ARCH[/VARIANT], e.g. linux/arm64", s)
	}
	return Normalize(*p), nil
}

// Matches reports whether have (normalised) is what want (normalised, as
// Parse returns it) asks for: the same OS and architecture, and the same
// variant unless want names none.
func Matches(have, want v1.Platform) bool {
	return have.OS == want.OS && have.Architecture == want.Architecture &&
		(want.Variant == "" || want.Variant == have.Variant)
}

// YoctoArch spells an OCI architecture the way Yocto's TARGET_ARCH does,
// for arch-suffixed tags: amd64 is x86_64, arm64 is aarch64, 386 is i686.
// Names Yocto shares with OCI (arm, riscv64, ...) are returned as they are.
func YoctoArch(arch string) string {
	if y, ok := yoctoArch[arch]; ok {
		return y
	}
	return arch
}

// archNames are the architecture spellings, OCI's and Yocto's
// (TARGET_ARCH), that may end an arch-suffixed tag besides those of
// ociArch, yoctoArch and armVariant.
var archNames = map[string]bool{
	"amd64": true, "arm64": true, "arm": true, "armeb": true, "aarch64_be": true, "386": true,
	"riscv32": true, "riscv64": true, "ppc": true, "powerpc": true, "s390x": true,
	"mips": true, "mips64": true, "mipsle": true, "mips64le": true, "loong64": true, "wasm": true,
}

// IsArchName reports whether s spells an architecture the way an
// arch-suffixed tag ends ("<tag>-<arch>", see YoctoArch): an OCI or Yocto
// name, optionally followed by an arm variant (armv7, arm64v8).
func IsArchName(s string) bool {
	if _, ok := armVariant(s); ok {
		return true
	}
	for _, v := range []string{"v5", "v6", "v7", "v8"} {
		if b, ok := strings.CutSuffix(s, v); ok && b != "" {
			s = b
			break
		}
	}
	_, oci := ociArch[s]
	_, yocto := yoctoArch[s]
	return oci || yocto || archNames[s]
}
