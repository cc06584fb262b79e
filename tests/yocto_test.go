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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/shellquote"
	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
)

// The bitbake + openembedded-core snapshot every developer and CI have
// beside the project (../shared/yocto/README.md).
const (
	yoctoSnapshot = "../shared/yocto/bitbake-oecore.tar.zst"
	// yoctoUnpacked marks a completely unpacked snapshot directory.
	yoctoUnpacked = ".unpacked"
)

// yoctoTrees are the bitbake and openembedded-core source trees the layer
// tests run.
type yoctoTrees struct {
	bitbake, oecore string
	origin          string // where they came from, for the log
}

// projectRoot is the repository's top directory (the tests run in tests/).
func projectRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// findYocto returns the trees to run: BITBAKE_DIR and OECORE_DIR when set,
// otherwise the snapshot beside the project, unpacked once into
// build/yocto-<sha256 prefix>/ (a rerun with the same tarball reuses it).
// Nothing found skips the test outside CI and fails it in CI (testtool),
// which has the snapshot.
func findYocto(t *testing.T) yoctoTrees {
	t.Helper()
	bbDir, oeDir := os.Getenv("BITBAKE_DIR"), os.Getenv("OECORE_DIR")
	if bbDir != "" || oeDir != "" {
		if bbDir == "" || oeDir == "" {
			t.Fatalf("set both BITBAKE_DIR and OECORE_DIR (have BITBAKE_DIR=%q OECORE_DIR=%q)", bbDir, oeDir)
		}
		y := yoctoTrees{bitbake: bbDir, oecore: oeDir, origin: "BITBAKE_DIR and OECORE_DIR"}
		y.check(t)
		return y
	}
	root := projectRoot(t)
	tarball := filepath.Join(root, yoctoSnapshot)
	testtool.NeedFile(t, "yocto snapshot", tarball, "see ../shared/yocto/README.md, or set BITBAKE_DIR and OECORE_DIR to checkouts")
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		t.Fatalf("reading %s: %v", tarball, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	dir := filepath.Join(root, "build", "yocto-"+sum[:16])
	y := yoctoTrees{bitbake: filepath.Join(dir, "bitbake"), oecore: filepath.Join(dir, "oecore")}
	if _, err := os.Stat(filepath.Join(dir, yoctoUnpacked)); err == nil {
		y.origin = fmt.Sprintf("%s (sha256 %s…), unpacked earlier in %s", yoctoSnapshot, sum[:16], dir)
		y.check(t)
		keepGoOut(t, dir)
		return y
	}
	zstd := testtool.Need(t, "zstd")
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".yocto-unpack-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	untar := exec.Command("tar", "--use-compress-program", zstd+" -d", "-xf", tarball, "-C", tmp)
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("unpacking %s: %v\n%s", tarball, err, out)
	}
	keepGoOut(t, tmp)
	if err := os.WriteFile(filepath.Join(tmp, yoctoUnpacked), []byte(sum+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir) // an interrupted earlier unpack
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	y.origin = fmt.Sprintf("%s (sha256 %s…), unpacked into %s in %s", yoctoSnapshot, sum[:16], dir, time.Since(start).Round(time.Millisecond))
	y.check(t)
	return y
}

// keepGoOut makes dir a module of its own, so that the project's
// `go vet ./...` and `go test ./...` do not descend into it: oe-core holds
// Go and C test files, and bitbake unpacks the tool's source and its Go
// modules below the build directory.
func keepGoOut(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, "go.mod")
	if _, err := os.Stat(p); err == nil {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	text := "// Written by TestBitbake: a module of its own keeps the project's ./... out of this directory.\nmodule ocireg-tool.invalid/build\n"
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (y yoctoTrees) check(t *testing.T) {
	t.Helper()
	for _, p := range []string{filepath.Join(y.bitbake, "bin", "bitbake"), filepath.Join(y.oecore, "oe-init-build-env")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s: %v", y.origin, err)
		}
	}
}

// bitbakeBuild is one build directory shared by every bitbake subtest, so
// that oe-core is parsed once: its configuration never changes during a
// run. What a subtest varies lives in variantFile, which only the test
// layer's bbappends include, so a change reparses those recipes only.
type bitbakeBuild struct {
	yocto yoctoTrees
	dir   string
	// console holds every bitbake command's full output, numbered.
	console string
	runs    int
	// summaries are bitbake's closing lines ("Tasks Summary", "Parsing of"),
	// for the closing log.
	summaries []string
	variantAt time.Time
}

// variantFile is included by the test layer's bbappends (relative to TOPDIR).
const variantFile = "conf/ocireg-test-variant.inc"

// newBitbakeBuild prepares dir (BITBAKE_BUILD_DIR, or build/bitbake beside
// the snapshot trees) for a run: results of an earlier run that a subtest
// checks are removed; bitbake's caches are kept.
func newBitbakeBuild(t *testing.T, y yoctoTrees) *bitbakeBuild {
	t.Helper()
	dir := os.Getenv("BITBAKE_BUILD_DIR")
	if dir == "" {
		dir = filepath.Join(projectRoot(t), "build", "bitbake")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := &bitbakeBuild{yocto: y, dir: dir, console: filepath.Join(dir, "console")}
	for _, stale := range []string{"console", "container-registry", "downloads-gomod", "tmp/deploy/images", "tmp/stamps"} {
		if err := os.RemoveAll(filepath.Join(dir, stale)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(b.console, 0o755); err != nil {
		t.Fatal(err)
	}
	keepGoOut(t, dir)
	if st, err := os.Stat(filepath.Join(dir, variantFile)); err == nil {
		b.variantAt = st.ModTime() // an earlier run's: only ever move forward
	}
	return b
}

// write writes a file below the build directory.
func (b *bitbakeBuild) write(t *testing.T, rel, text string) {
	t.Helper()
	p := filepath.Join(b.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// setVariant writes the variables of the next subtests into variantFile.
// bitbake compares include files by modification time in whole seconds,
// so each version gets a time at least a second after the previous one.
func (b *bitbakeBuild) setVariant(t *testing.T, vars map[string]string) {
	t.Helper()
	var sb strings.Builder
	sb.WriteString("# Written by TestBitbake for the running subtest; included by the test layer's bbappends.\n")
	for _, k := range sortedKeys(vars) {
		if strings.ContainsAny(vars[k], "\"\\\n") {
			t.Fatalf("variant %s = %q: bitbake would need quoting this helper does not do", k, vars[k])
		}
		fmt.Fprintf(&sb, "%s = \"%s\"\n", k, vars[k])
	}
	b.write(t, variantFile, sb.String())
	at := time.Now().Truncate(time.Second)
	if !at.After(b.variantAt) {
		at = b.variantAt.Add(time.Second)
	}
	b.variantAt = at
	if err := os.Chtimes(filepath.Join(b.dir, variantFile), at, at); err != nil {
		t.Fatal(err)
	}
}

// bitbakeNoise are console lines not worth repeating in the test log (the
// console file under build/ keeps them).
var bitbakeNoise = regexp.MustCompile(`^(NOTE: Running (noexec )?task |NOTE: recipe .*: task .*: (Started|Succeeded)$|NOTE: Running setscene task |[A-Z_]+ +=( |$)|meta[-a-z]* *(=|$)|Build Configuration:$)`)

// run runs bitbake with args in the build directory, keeps its output in
// the console directory, logs the interesting lines, and fails the test
// (with the end of the output) when bitbake exits non-zero. It returns
// everything bitbake printed.
func (b *bitbakeBuild) run(t *testing.T, args ...string) string {
	t.Helper()
	b.waitServer(t) // the last command's server, still shutting down
	b.runs++
	name := fmt.Sprintf("%02d-%s.log", b.runs, strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.Join(args, "-"), "-"), "-"))
	logPath := filepath.Join(b.console, name)
	shell := fmt.Sprintf(". %s %s >/dev/null && exec bitbake %s",
		shellquote.Quote(filepath.Join(b.yocto.oecore, "oe-init-build-env")), shellquote.Quote(b.dir), shellArgs(args))
	cmd := exec.Command("bash", "-c", shell)
	cmd.Dir = b.yocto.oecore
	cmd.Env = append(os.Environ(), "BITBAKEDIR="+b.yocto.bitbake, "LANG=en_US.UTF-8", "LC_ALL=en_US.UTF-8")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var all strings.Builder
	quiet := args[0] == "-e"
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			line := sc.Text()
			all.WriteString(line + "\n")
			if strings.HasPrefix(line, "NOTE: Tasks Summary:") || strings.HasPrefix(line, "Parsing of ") {
				b.summaries = append(b.summaries, fmt.Sprintf("bitbake %s: %s", strings.Join(args, " "), line))
			}
			if !quiet && !bitbakeNoise.MatchString(line) {
				t.Log("| " + line)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	t.Logf("$ bitbake %s", strings.Join(args, " "))
	start := time.Now()
	err := cmd.Run()
	pw.Close()
	<-done
	os.WriteFile(logPath, []byte(all.String()), 0o644)
	took := time.Since(start).Round(100 * time.Millisecond)
	if err != nil {
		lines := strings.Split(strings.TrimRight(all.String(), "\n"), "\n")
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		t.Fatalf("bitbake %s: %v after %s (console: %s); it ended with:\n%s", strings.Join(args, " "), err, took, logPath, strings.Join(lines, "\n"))
	}
	t.Logf("bitbake %s: exit 0 after %s (console: %s)", strings.Join(args, " "), took, logPath)
	return all.String()
}

// env runs `bitbake -e recipe` and reads it with the tool's own reader.
func (b *bitbakeBuild) env(t *testing.T, recipe string) config.Vars {
	t.Helper()
	out := b.run(t, "-e", recipe)
	p := filepath.Join(b.console, fmt.Sprintf("%02d-bitbake-e-%s.txt", b.runs, recipe))
	if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	vars, err := config.ReadDump(p)
	if err != nil {
		t.Fatalf("reading bitbake -e %s: %v", recipe, err)
	}
	return vars
}

// envVars runs `bitbake -e recipe` and picks out names, which must be
// single-line assignments. It is for recipes whose environment the tool's
// reader (b.env) cannot read: it rejects core-image-minimal's, whose
// variable names may start with a digit (7ZIP_COMPRESSION_LEVEL) and
// whose values keep backslashes unescaped (SDK_POST_INSTALL_COMMAND).
func (b *bitbakeBuild) envVars(t *testing.T, recipe string, names ...string) map[string]string {
	t.Helper()
	text := b.run(t, "-e", recipe)
	out := map[string]string{}
	for _, name := range names {
		m := regexp.MustCompile(`(?m)^(?:export )?` + regexp.QuoteMeta(name) + `="(.*)"$`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("bitbake -e %s: no single-line %s", recipe, name)
		}
		out[name] = strings.NewReplacer(`\"`, `"`, `\$`, `$`).Replace(m[1])
	}
	return out
}

// tasksSummary is the "Tasks Summary" line of a bitbake task run; it fails
// the test unless every task succeeded.
func tasksSummary(t *testing.T, out string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "NOTE: Tasks Summary:") {
			if !strings.HasSuffix(line, "all succeeded.") {
				t.Errorf("bitbake: %s", line)
			}
			return line
		}
	}
	t.Fatalf("no Tasks Summary line in bitbake's output")
	return ""
}

// waitServer waits for the bitbake server of the build directory to exit
// after the last command (it shuts down by itself; bitbake.lock names it).
func (b *bitbakeBuild) waitServer(t *testing.T) {
	t.Helper()
	lock := filepath.Join(b.dir, "bitbake.lock")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(lock)
		if err != nil {
			return
		}
		// "<pid>" or "<pid> <host>:<port>"; empty once the server is gone.
		f := strings.Fields(string(data))
		if len(f) == 0 {
			return
		}
		if pid, err := strconv.Atoi(f[0]); err != nil || syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("the bitbake server of %s is still running 30 s after the last command", b.dir)
}

func shellArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellquote.Quote(a)
	}
	return strings.Join(q, " ")
}
