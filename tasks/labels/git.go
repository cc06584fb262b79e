package labels

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Head is the checked-out state of a git repository.
type Head struct {
	// Commit is the full hex object name HEAD points at; empty outside a
	// repository or on a branch without commits.
	Commit string
	// Branch is the checked-out branch without "refs/heads/"; empty on a
	// detached HEAD or outside a repository.
	Branch string
}

// ShortCommit is the commit abbreviated to seven hex digits, as the seed
// shows it ("8a3f2b1").
func (h Head) ShortCommit() string {
	if len(h.Commit) > 7 {
		return h.Commit[:7]
	}
	return h.Commit
}

var objectNameRe = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// ReadHead reads HEAD of the git repository holding dir, searching upwards
// as git does. It reads the repository files directly (no git program):
// .git directories and .git files of worktrees and submodules, loose and
// packed refs. Outside a repository it returns an empty Head and no error.
func ReadHead(dir string) (Head, error) {
	if dir == "" {
		return Head{}, nil
	}
	gitDir, err := findGitDir(dir)
	if err != nil || gitDir == "" {
		return Head{}, err
	}
	common := gitDir
	if b, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		common = resolve(gitDir, strings.TrimSpace(string(b)))
	}
	b, err := os.ReadFile(filepath.Join(gitDir, "HEAD"))
	if err != nil {
		return Head{}, fmt.Errorf("reading git HEAD: %w", err)
	}
	head := strings.TrimSpace(string(b))
	var h Head
	ref, symbolic := strings.CutPrefix(head, "ref: ")
	if !symbolic {
		if !objectNameRe.MatchString(head) {
			return Head{}, fmt.Errorf("%s: unexpected content %q", filepath.Join(gitDir, "HEAD"), head)
		}
		h.Commit = head
		return h, nil
	}
	ref = strings.TrimSpace(ref)
	h.Branch = strings.TrimPrefix(ref, "refs/heads/")
	for depth := 0; depth < 10; depth++ {
		target, err := readRef(gitDir, common, ref)
		if err != nil || target == "" {
			return h, err
		}
		next, symbolic := strings.CutPrefix(target, "ref: ")
		if !symbolic {
			h.Commit = target
			return h, nil
		}
		ref = strings.TrimSpace(next)
	}
	return h, fmt.Errorf("git ref %s: too many levels of symbolic refs", ref)
}

// findGitDir walks up from dir to the first .git directory or .git file.
func findGitDir(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, ".git")
		st, err := os.Stat(p)
		switch {
		case err == nil && st.IsDir():
			return p, nil
		case err == nil:
			b, err := os.ReadFile(p)
			if err != nil {
				return "", err
			}
			target, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir:")
			if !ok {
				return "", fmt.Errorf("%s: not a gitdir file", p)
			}
			return resolve(dir, strings.TrimSpace(target)), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", nil
		}
		dir = parent
	}
}

// readRef resolves one ref name to its file content: a loose ref in the
// worktree's or the common git dir, else an entry of packed-refs. An unborn
// branch gives "".
func readRef(gitDir, common, ref string) (string, error) {
	for _, d := range []string{gitDir, common} {
		if b, err := os.ReadFile(filepath.Join(d, filepath.FromSlash(ref))); err == nil {
			return strings.TrimSpace(string(b)), nil
		}
	}
	f, err := os.Open(filepath.Join(common, "packed-refs"))
	if os.IsNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "^") {
			continue
		}
		if name, rest, ok := strings.Cut(line, " "); ok && rest == ref && objectNameRe.MatchString(name) {
			return name, nil
		}
	}
	return "", sc.Err()
}

func resolve(base, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(base, p)
}
