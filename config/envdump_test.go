package config

import (
	"strings"
	"testing"
)

func TestParseDump(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Vars
	}{
		{"class dump", "A=\"1\"\nexport B=\"two words\"\n", Vars{"A": "1", "B": "two words"}},
		{"empty value", "A=\"\"\n", Vars{"A": ""}},
		{"equals and hash", `A="x=y # not a comment"` + "\n", Vars{"A": "x=y # not a comment"}},
		{"escaped quotes", `A="{\"vxn\": {\"path\": \"/usr/bin/vxn\"}}"` + "\n", Vars{"A": `{"vxn": {"path": "/usr/bin/vxn"}}`}},
		{"escaped dollar", `A="\${TOPDIR}/x"` + "\n", Vars{"A": "${TOPDIR}/x"}},
		{"literal backslash", `A="find \( -name x \)"` + "\n", Vars{"A": `find \( -name x \)`}},
		// bitbake writes backslashes as they are (bb.data.emit_var): a
		// value ending in one ends in \" at the end of its line.
		{"value ending in a backslash", `A="a\"` + "\n", Vars{"A": `a\`}},
		{"two backslashes", `A="a\\b\\"` + "\n", Vars{"A": `a\\b\\`}},
		{"backslash before an escaped quote", `A="a\\"b"` + "\n", Vars{"A": `a\"b`}},
		{"backslash before an escaped dollar", `A="\\${X}"` + "\n", Vars{"A": `\${X}`}},
		{"unexpanded reference", `A="${@d.getVar('X')}"` + "\n", Vars{"A": "${@d.getVar('X')}"}},
		{"single quoted", "A='it is \"literal\" $x'\n", Vars{"A": `it is "literal" $x`}},
		{"unquoted", "A=plain value\n", Vars{"A": "plain value"}},
		{"comment after value", "A=\"v\" # trailing\n", Vars{"A": "v"}},
		{"crlf", "A=\"v\"\r\n", Vars{"A": "v"}},
		{"multi-line value", "A=\"line one \\\nline two\"\nB=\"b\"\n", Vars{"A": "line one\nline two", "B": "b"}},
		{"override names", "RDEPENDS:${PN}-dev=\"x\"\nFOO:append=\" y\"\n", Vars{"RDEPENDS:${PN}-dev": "x", "FOO:append": " y"}},
		{"comments and blanks", "# c\n\n   # indented\nA=\"1\"\n", Vars{"A": "1"}},
		{"unset", "unset SHELL\nA=\"1\"\n", Vars{"A": "1"}},
		{
			"shell and python functions",
			"do_x() {\n\techo \"A=wrong\"\n\tif [ 1 ]; then\n\t\t:\n\tfi\n}\n" +
				"python do_y () {\n    d.setVar('A', 'wrong')\n    if x:\n        pass\n}\n" +
				"fakeroot python do_z() {\n    x = {}\n}\n" +
				"A=\"right\"\n",
			Vars{"A": "right"},
		},
		{
			"bitbake progress lines",
			"Loading cache...done.\nLoaded 0 entries from dependency cache.\nParsing recipes...done.\nParsing of 955 .bb files complete (0 cached, 955 parsed). 1985 targets, 49 skipped, 0 masked, 0 errors.\nNOTE: Resolving any missing task queue dependencies\nA=\"1\"\n",
			Vars{"A": "1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDump(strings.NewReader(tt.in), "dump")
			if err != nil {
				t.Fatalf("ParseDump: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d vars %v, want %v", len(got), got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestParseDumpErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"garbage line", "A=\"1\"\nthis is not an assignment\n", "env.dump:2: malformed line"},
		{"unterminated quote", "A=\"1\nB=\"2\n", "env.dump:1: A:"},
		{"text after quote", "A=\"1\" extra\n", "env.dump:1: A: unexpected text after closing quote"},
		{"unterminated single quote", "A='x\n", "env.dump:1: A: unterminated single-quoted"},
		{"unterminated function", "do_x() {\n\techo\n", "unterminated function body"},
		{"bad name", "A B=\"x\"\n", "env.dump:1: malformed line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDump(strings.NewReader(tt.in), "env.dump")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// The full `bitbake -e base-files` output of a real build parses, and the
// registry variables come out as local.conf set them.
func TestReadDumpBitbakeE(t *testing.T) {
	vars, err := ReadDump("testdata/bitbake-e-base-files.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := Vars{
		"CONTAINER_REGISTRY_URL":          "localhost:5000",
		"CONTAINER_REGISTRY_NAMESPACE":    "yocto",
		"CONTAINER_REGISTRY_INSECURE":     "1",
		"CONTAINER_REGISTRY_TAG_STRATEGY": "sha branch latest",
		"CONTAINER_REGISTRY_CERT_SAN":     "DNS:myhost.local,IP:192.168.1.100",
		"CONTAINER_REGISTRY_STORAGE":      "/srv/yocto/build/container-registry",
		"DOCKER_OCI_RUNTIMES":             `{"vxn": {"path": "/usr/bin/vxn-oci-runtime"}}`,
		"TOPDIR":                          "/srv/yocto/build",
		"DEPLOY_DIR_IMAGE":                "/srv/yocto/build/tmp/deploy/images/qemux86-64",
		"MACHINE":                         "qemux86-64",
		"TARGET_ARCH":                     "x86_64",
		"PV":                              "3.0.14",
		"OPKGBUILDCMD":                    `opkg-build -Z zstd -a "--threads=2 -3"`,
		"SSTATE_SCAN_CMD":                 `find ${SSTATE_BUILDDIR} \( -name "*.la" -o -name "*-config" -o -name "*_config" -o -name "postinst-*" \) -type f`,
	}
	for k, v := range want {
		if vars[k] != v {
			t.Errorf("%s = %q, want %q", k, vars[k], v)
		}
	}
	if len(vars) < 1000 {
		t.Errorf("only %d variables read; the dump has thousands", len(vars))
	}
	c, err := FromVars(vars)
	if err != nil {
		t.Fatalf("config from bitbake -e: %v", err)
	}
	if c.Storage != "/srv/yocto/build/container-registry" || len(c.CertSANs) != 2 || strings.Join(c.TagStrategy, " ") != "sha branch latest" {
		t.Errorf("config = storage %q SANs %v strategy %v", c.Storage, c.CertSANs, c.TagStrategy)
	}
}

// `bitbake -e` of an image recipe has variables whose names start with a
// digit.
func TestParseDumpDigitName(t *testing.T) {
	vars, err := ParseDump(strings.NewReader("export 7ZIP_COMPRESSION_LEVEL=\"9\"\nPV=\"1.0\"\n"), "bitbake-e")
	if err != nil || vars["7ZIP_COMPRESSION_LEVEL"] != "9" || vars["PV"] != "1.0" {
		t.Fatalf("%v %v", vars, err)
	}
}
