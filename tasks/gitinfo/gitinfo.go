// Package gitinfo reads the checked-out state of a git repository (branch
// and commit) from the repository's own files, without running git. It
// knows plain repositories, linked worktrees and submodules (a .git file
// naming the real git directory, with commondir for shared refs), loose
// and packed refs, symbolic refs, detached and unborn HEADs. It only reads;
// it never writes to a repository and never prints.
package gitinfo

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// ErrNoRepository is returned by Read when no directory from dir up to the
// file system root holds a .git entry, or when dir is empty.
var ErrNoRepository = errors.New("not in a git repository")

// Head is the checked-out state of a repository.
type Head struct {
	// Commit is the full hex object name HEAD resolves to; empty on a
	// branch without commits yet.
	Commit string
	// Branch is the branch HEAD names, without "refs/heads/"; empty on a
	// detached HEAD.
	Branch string
}

// ShortCommit is the commit abbreviated to seven hex digits, as git shows
// it by default ("8a3f2b1"); empty when there is no commit.
func (h Head) ShortCommit() string {
	if len(h.Commit) > 7 {
		return h.Commit[:7]
	}
	return h.Commit
}

// maxSymrefDepth bounds a chain of symbolic refs, so that a loop ends.
const maxSymrefDepth = 10

// objectNameRe is a SHA-1 or SHA-256 object name.
var objectNameRe = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// Read returns HEAD of the git repository holding dir, searching from dir
// upwards as git does. Outside any repository it returns ErrNoRepository;
// a repository it cannot make sense of is an error naming the file.
func Read(dir string) (Head, error) {
	if dir == "" {
		return Head{}, ErrNoRepository
	}
	gitDir, err := findGitDir(dir)
	if err != nil {
		return Head{}, err
	}
	common := gitDir
	if b, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		common = resolve(gitDir, strings.TrimSpace(string(b)))
	}
	headPath := filepath.Join(gitDir, "HEAD")
	b, err := os.ReadFile(headPath)
	if err != nil {
		return Head{}, fmt.Errorf("reading git HEAD: %w", err)
	}
	content := strings.TrimSpace(string(b))
	ref, symbolic := strings.CutPrefix(content, "ref:")
	if !symbolic {
		if !objectNameRe.MatchString(content) {
			return Head{}, fmt.Errorf("git HEAD %q: unexpected content %q", headPath, content)
		}
		return Head{Commit: content}, nil
	}
	// Follow symbolic refs to the last one, as git symbolic-ref does: that
	// is the branch a commit would move.
	ref = strings.TrimSpace(ref)
	for range maxSymrefDepth {
		h := Head{Branch: strings.TrimPrefix(ref, "refs/heads/")}
		target, err := readRef(gitDir, common, ref)
		if err != nil {
			return Head{}, err
		}
		if target == "" {
			return h, nil // a branch without commits yet
		}
		next, symbolic := strings.CutPrefix(target, "ref:")
		if !symbolic {
			h.Commit = target
			return h, nil
		}
		ref = strings.TrimSpace(next)
	}
	return Head{}, fmt.Errorf("git ref %q: too many levels of symbolic refs", ref)
}

// findGitDir walks up from dir to the first .git directory, or the
// directory a .git file (worktree, submodule) names.
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
				return "", fmt.Errorf("reading git link: %w", err)
			}
			target, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir:")
			if !ok {
				return "", fmt.Errorf("git link %q: no \"gitdir:\" line", p)
			}
			return resolve(dir, strings.TrimSpace(target)), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoRepository
		}
		dir = parent
	}
}

// readRef resolves one ref name to what it holds: an object name or
// "ref: <other>". A loose ref in the worktree's own git dir wins over one
// in the common dir, which wins over packed-refs. A ref that exists nowhere
// (an unborn branch) gives "".
func readRef(gitDir, common, ref string) (string, error) {
	for _, d := range []string{gitDir, common} {
		p := filepath.Join(d, filepath.FromSlash(ref))
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if !strings.HasPrefix(v, "ref:") && !objectNameRe.MatchString(v) {
			return "", fmt.Errorf("git ref %q: unexpected content %q", p, v)
		}
		return v, nil
	}
	return packedRef(common, ref)
}

// packedRef looks ref up in the packed-refs file of the common git dir,
// skipping its header and peeled ("^") lines.
func packedRef(common, ref string) (string, error) {
	f, err := os.Open(filepath.Join(common, "packed-refs"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading packed refs: %w", err)
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
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading packed refs: %w", err)
	}
	return "", nil
}

// resolve makes p absolute against base unless it already is.
func resolve(base, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(base, p)
}
