package gitinfo

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/internal/testgit"
)

// git runs git in dir (see testgit.Run).
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return testgit.Run(t, dir, args...)
}

// repo makes a repository with one commit on branch and returns its top
// directory.
func repo(t *testing.T, branch string) string {
	t.Helper()
	dir, _ := testgit.Repo(t, branch)
	return dir
}

// gitHead is what git itself says about dir: the commit and the short
// branch name ("" when detached).
func gitHead(t *testing.T, dir string) Head {
	t.Helper()
	h := Head{Commit: git(t, dir, "rev-parse", "HEAD")}
	cmd := exec.Command("git", "symbolic-ref", "-q", "--short", "HEAD")
	cmd.Dir = dir
	if out, err := cmd.Output(); err == nil {
		h.Branch = strings.TrimSpace(string(out))
	}
	return h
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReadMatchesGit compares Read with git on the layouts git produces.
func TestReadMatchesGit(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T) string // returns the directory to read
		check func(t *testing.T, dir string)
	}{
		{"loose refs", func(t *testing.T) string { return repo(t, "feature/login") }, nil},
		{"subdirectory of the work tree", func(t *testing.T) string {
			top := repo(t, "main")
			sub := filepath.Join(top, "build", "tmp")
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			return sub
		}, nil},
		{"packed refs only", func(t *testing.T) string {
			top := repo(t, "main")
			git(t, top, "pack-refs", "--all", "--prune")
			return top
		}, func(t *testing.T, dir string) {
			if _, err := os.Stat(filepath.Join(dir, ".git", "refs", "heads", "main")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the loose ref is still there (%v); the case tests nothing", err)
			}
		}},
		{"detached HEAD", func(t *testing.T) string {
			top := repo(t, "main")
			git(t, top, "commit", "-q", "--allow-empty", "-m", "two")
			git(t, top, "checkout", "-q", "--detach", "HEAD~1")
			return top
		}, nil},
		{"linked worktree (.git file with commondir)", func(t *testing.T) string {
			top := repo(t, "main")
			wt := filepath.Join(t.TempDir(), "wt")
			git(t, top, "worktree", "add", "-q", "-b", "topic", wt)
			git(t, wt, "commit", "-q", "--allow-empty", "-m", "on topic")
			return wt
		}, func(t *testing.T, dir string) {
			if st, err := os.Stat(filepath.Join(dir, ".git")); err != nil || st.IsDir() {
				t.Fatalf(".git of the worktree is not a file: %v", err)
			}
		}},
		{"linked worktree after pack-refs", func(t *testing.T) string {
			top := repo(t, "main")
			wt := filepath.Join(t.TempDir(), "wt")
			git(t, top, "worktree", "add", "-q", "-b", "topic", wt)
			git(t, wt, "commit", "-q", "--allow-empty", "-m", "on topic")
			git(t, top, "pack-refs", "--all", "--prune")
			return wt
		}, nil},
		{"submodule (relative gitdir)", func(t *testing.T) string {
			lib := repo(t, "lib-main")
			top := repo(t, "main")
			git(t, top, "submodule", "add", "-q", lib, "lib")
			return filepath.Join(top, "lib")
		}, func(t *testing.T, dir string) {
			b, err := os.ReadFile(filepath.Join(dir, ".git"))
			if err != nil || !strings.HasPrefix(string(b), "gitdir: ../") {
				t.Fatalf("submodule .git is not a relative gitdir file: %q %v", b, err)
			}
		}},
		{"symbolic ref chain", func(t *testing.T) string {
			top := repo(t, "main")
			git(t, top, "symbolic-ref", "refs/heads/alias", "refs/heads/main")
			git(t, top, "symbolic-ref", "HEAD", "refs/heads/alias")
			return top
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.setup(t)
			if c.check != nil {
				c.check(t, dir)
			}
			got, err := Read(dir)
			if err != nil {
				t.Fatal(err)
			}
			if want := gitHead(t, dir); got != want {
				t.Errorf("Read = %+v, git says %+v", got, want)
			}
		})
	}
}

// TestReadWithoutGit covers states git's own plumbing does not report the
// same way, and broken repositories.
func TestReadWithoutGit(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	const sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct {
		name    string
		setup   func(t *testing.T) string
		want    Head
		wantErr string // substring; "" for no error
		noRepo  bool   // the error is ErrNoRepository
	}{
		{"no repository", func(t *testing.T) string { return t.TempDir() }, Head{}, "not in a git repository", true},
		{"empty directory name", func(t *testing.T) string { return "" }, Head{}, "not in a git repository", true},
		{"unborn branch", func(t *testing.T) string {
			dir := t.TempDir()
			git(t, dir, "init", "-q", "-b", "new")
			return dir
		}, Head{Branch: "new"}, "", false},
		{"detached HEAD written by hand", func(t *testing.T) string {
			dir := repo(t, "main")
			writeFile(t, filepath.Join(dir, ".git", "HEAD"), sha+"\n")
			return dir
		}, Head{Commit: sha}, "", false},
		{"sha256 object name", func(t *testing.T) string {
			dir := repo(t, "main")
			writeFile(t, filepath.Join(dir, ".git", "HEAD"), sha256+"\n")
			return dir
		}, Head{Commit: sha256}, "", false},
		{"packed-refs with header and peeled lines", func(t *testing.T) string {
			dir := repo(t, "main")
			git(t, dir, "pack-refs", "--all", "--prune")
			writeFile(t, filepath.Join(dir, ".git", "packed-refs"),
				"# pack-refs with: peeled fully-peeled sorted \n"+
					sha+" refs/heads/main\n"+
					"^"+strings.Repeat("f", 40)+"\n")
			return dir
		}, Head{Commit: sha, Branch: "main"}, "", false},
		{"corrupt HEAD", func(t *testing.T) string {
			dir := repo(t, "main")
			writeFile(t, filepath.Join(dir, ".git", "HEAD"), "garbage\n")
			return dir
		}, Head{}, "unexpected content \"garbage\"", false},
		{"corrupt loose ref", func(t *testing.T) string {
			dir := repo(t, "main")
			writeFile(t, filepath.Join(dir, ".git", "refs", "heads", "main"), "not-a-sha\n")
			return dir
		}, Head{}, "unexpected content \"not-a-sha\"", false},
		{".git file without gitdir", func(t *testing.T) string {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, ".git"), "hello\n")
			return dir
		}, Head{}, "no \"gitdir:\" line", false},
		{"symbolic ref loop", func(t *testing.T) string {
			dir := repo(t, "main")
			writeFile(t, filepath.Join(dir, ".git", "HEAD"), "ref: refs/heads/a\n")
			writeFile(t, filepath.Join(dir, ".git", "refs", "heads", "a"), "ref: refs/heads/b\n")
			writeFile(t, filepath.Join(dir, ".git", "refs", "heads", "b"), "ref: refs/heads/a\n")
			return dir
		}, Head{}, "too many levels of symbolic refs", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Read(c.setup(t))
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			case errors.Is(err, ErrNoRepository) != c.noRepo:
				t.Fatalf("errors.Is(%v, ErrNoRepository) = %v, want %v", err, !c.noRepo, c.noRepo)
			}
			if got != c.want {
				t.Errorf("Read = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestShortCommit(t *testing.T) {
	for in, want := range map[string]string{
		"8a3f2b1c0ffee0000000000000000000000000aa": "8a3f2b1",
		"8a3f2b1": "8a3f2b1",
		"":        "",
	} {
		if got := (Head{Commit: in}).ShortCommit(); got != want {
			t.Errorf("ShortCommit(%q) = %q, want %q", in, got, want)
		}
	}
}
