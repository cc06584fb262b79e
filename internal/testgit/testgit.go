// Package testgit makes real git repositories for tests, with git run
// under an isolated configuration (no user or system config, fixed
// identity), so tests see the same repository on every machine.
package testgit

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
)

// Run runs git with args in dir and returns its trimmed output; a failure
// fails the test.
func Run(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{
		"-c", "user.name=T", "-c", "user.email=t@example.com",
		"-c", "init.defaultBranch=master", "-c", "protocol.file.allow=always",
	}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Repo makes a repository in a new temporary directory with one commit on
// branch and returns its top directory and that commit.
func Repo(t testing.TB, branch string) (dir, commit string) {
	t.Helper()
	testtool.Need(t, "git")
	dir = t.TempDir()
	Run(t, dir, "init", "-q", "-b", branch)
	Run(t, dir, "commit", "-q", "--allow-empty", "-m", "one")
	return dir, Run(t, dir, "rev-parse", "HEAD")
}
