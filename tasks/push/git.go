package push

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// GitHead is the checked-out commit of a repository and its branch ("" on
// a detached HEAD).
type GitHead struct {
	Commit string
	Branch string
}

// ReadGitHead finds the git repository containing dir (walking up) and
// reads HEAD without running git: plain and linked work trees, loose and
// packed refs.
func ReadGitHead(dir string) (*GitHead, error) {
	gitDir, err := findGitDir(dir)
	if err != nil {
		return nil, err
	}
	common := gitDir
	if data, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		c := strings.TrimSpace(string(data))
		if !filepath.IsAbs(c) {
			c = filepath.Join(gitDir, c)
		}
		common = c
	}
	head, err := os.ReadFile(filepath.Join(gitDir, "HEAD"))
	if err != nil {
		return nil, fmt.Errorf("reading git HEAD: %w", err)
	}
	h := strings.TrimSpace(string(head))
	ref, isRef := strings.CutPrefix(h, "ref: ")
	if !isRef {
		return &GitHead{Commit: h}, nil
	}
	out := &GitHead{Branch: strings.TrimPrefix(ref, "refs/heads/")}
	for _, d := range []string{gitDir, common} {
		if data, err := os.ReadFile(filepath.Join(d, filepath.FromSlash(ref))); err == nil {
			out.Commit = strings.TrimSpace(string(data))
			return out, nil
		}
	}
	f, err := os.Open(filepath.Join(common, "packed-refs"))
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			sha, name, ok := strings.Cut(sc.Text(), " ")
			if ok && name == ref {
				out.Commit = sha
				return out, nil
			}
		}
	}
	// A branch without commits yet.
	return out, nil
}

func findGitDir(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(d, ".git")
		fi, err := os.Stat(p)
		if err == nil {
			if fi.IsDir() {
				return p, nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return "", err
			}
			g, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "gitdir: ")
			if !ok {
				return "", fmt.Errorf("%s: not a gitdir file", p)
			}
			if !filepath.IsAbs(g) {
				g = filepath.Join(d, g)
			}
			return g, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("not in a git repository")
		}
		d = parent
	}
}
