package tests

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ocireg-tool/ocireg-tool/internal/shellquote"
	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
)

// layerCheckVar asks for TestYoctoCheckLayer, which is too slow for a
// plain `go test ./...`.
const layerCheckVar = "OCIREG_TOOL_LAYER_CHECK"

// TestYoctoCheckLayer runs openembedded-core's yocto-check-layer (the check
// behind the "Yocto Project Compatible" mark; the snapshot in
// ../shared/yocto, or BITBAKE_DIR/OECORE_DIR) on meta-layer in the two
// places users find it: a copy outside any git checkout, as a layer
// vendored from an archive or fetched alone is (the tool recipe must skip
// itself there), and in place in the project's checkout (the tool recipe
// builds the checkout). Every test case must end ok or skipped (the BSP and
// distro cases skip for a software layer), and the check must say PASS.
//
// Both runs share one build directory, build/layer-check
// (LAYER_CHECK_BUILD_DIR to move it), and the copy keeps one path per
// checkout, so bitbake's parse caches (oe-core alone, with each placement,
// and with the check's class) serve every later run.
// LAYER_CHECK_PLACEMENTS ("copied in-place" when empty) picks the runs.
func TestYoctoCheckLayer(t *testing.T) {
	if os.Getenv(layerCheckVar) == "" {
		if testtool.InCI() {
			// make test leaves it out (-skip); a CI that runs it means it.
			t.Fatalf("%s is not set: CI runs yocto-check-layer through `make test` (the copied placement) or `make layer-check`", layerCheckVar)
		}
		t.Skipf("yocto-check-layer takes 20 minutes or more a placement: run `make layer-check` (it sets %s=1)", layerCheckVar)
	}
	began := time.Now()
	if out, _ := exec.Command("locale", "-a").Output(); !regexp.MustCompile(`(?im)^en_US\.utf-?8$`).Match(out) {
		testtool.Missing(t, "the en_US.UTF-8 locale (bitbake needs it)", "run `make deps`")
	}
	testtool.Need(t, "python3")
	testtool.Need(t, "git")
	y := findYocto(t)
	t.Logf("bitbake and openembedded-core: %s", y.origin)
	checker := filepath.Join(y.oecore, "scripts", "yocto-check-layer")
	if _, err := os.Stat(checker); err != nil {
		t.Fatalf("%s: %v", y.origin, err)
	}

	root := projectRoot(t)
	inPlace := filepath.Join(root, "meta-layer")
	placements := strings.Fields(os.Getenv("LAYER_CHECK_PLACEMENTS"))
	if len(placements) == 0 {
		placements = []string{"copied", "in-place"}
	}
	layers := map[string]string{"in-place": inPlace}
	for _, p := range placements {
		switch p {
		case "copied":
			layers[p] = layerCopy(t, root, inPlace)
		case "in-place":
		default:
			t.Fatalf("LAYER_CHECK_PLACEMENTS: unknown placement %q (copied, in-place)", p)
		}
	}

	// A relative LAYER_CHECK_BUILD_DIR is below the project's top, where
	// make runs.
	dir := os.Getenv("LAYER_CHECK_BUILD_DIR")
	if dir == "" {
		dir = filepath.Join("build", "layer-check")
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	b := &bitbakeBuild{yocto: y, dir: dir}
	// The check adds the layer to bblayers.conf itself and restores it;
	// local.conf never changes, so the caches stay valid between runs.
	b.write(t, "conf/bblayers.conf", fmt.Sprintf("# Written by TestYoctoCheckLayer: oe-core alone; yocto-check-layer adds the layer under test.\nBBPATH = \"${TOPDIR}\"\nBBFILES ?= \"\"\nBBLAYERS = \"%s\"\n",
		filepath.Join(y.oecore, "meta")))
	local := `# Written by TestYoctoCheckLayer.
MACHINE = "qemux86-64"
DISTRO = "nodistro"
PACKAGE_CLASSES = "package_ipk"
BB_NUMBER_THREADS = "2"
# Offline: nothing is built, uninative cannot be downloaded.
BB_NO_NETWORK = "1"
INHERIT:remove = "uninative"
`
	if os.Getuid() == 0 {
		local += "\n# As root (CI): oe-core's sanity check refuses to run.\nINHERIT:remove = \"sanity\"\n"
	}
	b.write(t, "conf/local.conf", local)
	keepGoOut(t, dir)
	console := filepath.Join(dir, "console")
	if err := os.MkdirAll(console, 0o755); err != nil {
		t.Fatal(err)
	}

	var summaries, timings []string
	defer func() {
		t.Logf("wall times (whole test %s):\n  %s", time.Since(began).Round(time.Second), strings.Join(timings, "\n  "))
		t.Logf("yocto-check-layer's summaries:\n  %s", strings.Join(summaries, "\n  "))
	}()
	for _, p := range placements {
		start := time.Now()
		t.Run(p, func(t *testing.T) {
			summaries = append(summaries, checkLayer(t, b, checker, p, layers[p], filepath.Join(console, p+".log"))...)
		})
		timings = append(timings, fmt.Sprintf("%-9s %6.1fs", p, time.Since(start).Seconds()))
	}
}

// layerCopy copies the layer to one directory per checkout below the
// system's temporary directory, outside any git checkout, with the files'
// modification times (bitbake's caches stay valid when nothing changed).
func layerCopy(t *testing.T, root, layer string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(root))
	parent := filepath.Join(os.TempDir(), "ocireg-tool-layer-check-"+hex.EncodeToString(sum[:])[:12])
	dst := filepath.Join(parent, filepath.Base(layer))
	if err := os.RemoveAll(dst); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", layer, dst).CombinedOutput(); err != nil {
		t.Fatalf("copying the layer: %v\n%s", err, out)
	}
	if top, err := exec.Command("git", "-C", dst, "rev-parse", "--show-toplevel").Output(); err == nil {
		t.Fatalf("the copy %s is inside the git checkout %s: it would not test a layer without its source", dst, strings.TrimSpace(string(top)))
	}
	t.Logf("the layer copied to %s (no git checkout around it)", dst)
	return dst
}

// yocto-check-layer reports each test case (unittest, verbosity 2) as a
// line naming it, "test_parse (common.CommonCheckLayer.test_parse)" or
// "setUpClass (bsp.BSPCheckLayer)" for a class skipped whole, followed by
// its verdict, " ... ok", on the same line or the next.
var (
	checkCaseRe    = regexp.MustCompile(`^(?:INFO: )?(test_\w+|setUpClass) \(([\w.]+)\)(?: \.\.\. (.+))?$`)
	checkVerdictRe = regexp.MustCompile(`^(?:INFO: )? ?\.\.\. (.+)$`)
	// skipAllowedRe: the cases a software layer may skip.
	skipAllowedRe = regexp.MustCompile(`^(bsp|distro)\.`)
)

// checkLayer runs yocto-check-layer on layer in the build directory; it
// fails the test on a failing or erroring case, a missing verdict or a
// summary other than PASS, and returns the verdict and summary lines.
func checkLayer(t *testing.T, b *bitbakeBuild, checker, placement, layer, logPath string) []string {
	b.waitServer(t) // the last run's server, still shutting down
	shell := fmt.Sprintf(". %s %s >/dev/null && exec %s --no-auto-dependency %s",
		shellquote.Quote(filepath.Join(b.yocto.oecore, "oe-init-build-env")), shellquote.Quote(b.dir),
		shellquote.Quote(checker), shellquote.Quote(layer))
	cmd := exec.Command("bash", "-c", shell)
	cmd.Dir = b.yocto.oecore
	cmd.Env = append(os.Environ(), "BITBAKEDIR="+b.yocto.bitbake, "LANG=en_US.UTF-8", "LC_ALL=en_US.UTF-8")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var all strings.Builder
	var lines []string
	verdicts := map[string]string{} // by case id: common.CommonCheckLayer.test_parse
	summary := ""
	name := filepath.Base(layer)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		pending := ""
		verdict := func(id, v string) {
			verdicts[id] = v
			lines = append(lines, fmt.Sprintf("%s: %s ... %s", placement, id, v))
		}
		for sc.Scan() {
			line := sc.Text()
			all.WriteString(line + "\n")
			t.Log("| " + line)
			if m := checkCaseRe.FindStringSubmatch(line); m != nil {
				pending = m[2] // the test's id, or the class of a setUpClass
				if m[3] != "" {
					verdict(pending, m[3])
					pending = ""
				}
			} else if m := checkVerdictRe.FindStringSubmatch(line); m != nil && pending != "" {
				verdict(pending, m[1])
				pending = ""
			}
			if s, ok := strings.CutPrefix(line, "INFO: "+name+" ... "); ok {
				summary = s
			}
		}
		io.Copy(io.Discard, pr)
	}()
	t.Logf("$ yocto-check-layer --no-auto-dependency %s", layer)
	start := time.Now()
	err := cmd.Run()
	pw.Close()
	<-done
	os.WriteFile(logPath, []byte(all.String()), 0o644)
	t.Logf("yocto-check-layer %s: %v after %s (console: %s)", layer, err, time.Since(start).Round(time.Second), logPath)
	lines = append(lines, fmt.Sprintf("%s: %s ... %s", placement, name, summary))
	if err != nil {
		t.Errorf("yocto-check-layer %s: %v", layer, err)
	}
	if summary != "PASS" {
		t.Errorf("yocto-check-layer %s: summary %q, want PASS", layer, summary)
	}
	if len(verdicts) == 0 {
		t.Errorf("yocto-check-layer %s: no test case ran", layer)
	}
	// The cases a software layer must pass, whatever else the check grows.
	for _, c := range []string{"test_readme", "test_security", "test_parse", "test_show_environment", "test_world",
		"test_world_inherit_class", "test_signatures", "test_layerseries_compat", "test_patches_upstream_status"} {
		if v := verdicts["common.CommonCheckLayer."+c]; v != "ok" {
			t.Errorf("yocto-check-layer %s: %s %q, want ok", layer, c, v)
		}
	}
	// Anything else passes too, or skips for being a BSP or distro check.
	for c, v := range verdicts {
		if v != "ok" && !(strings.HasPrefix(v, "skipped") && skipAllowedRe.MatchString(c)) {
			t.Errorf("yocto-check-layer %s: %s %s", layer, c, v)
		}
	}
	return lines
}
