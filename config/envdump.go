package config

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// Vars holds bitbake variables by name, as read from an env dump or the
// process environment.
type Vars map[string]string

// Lookup returns the value of name and whether it is set.
func (v Vars) Lookup(name string) (string, bool) {
	val, ok := v[name]
	return val, ok
}

// Overlay returns a copy of v with every entry of top applied over it.
func (v Vars) Overlay(top Vars) Vars {
	out := make(Vars, len(v)+len(top))
	for k, val := range v {
		out[k] = val
	}
	for k, val := range top {
		out[k] = val
	}
	return out
}

// FromEnviron turns KEY=value strings (as os.Environ returns them) into Vars.
func FromEnviron(environ []string) Vars {
	out := make(Vars, len(environ))
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok && k != "" {
			out[k] = val
		}
	}
	return out
}

// ReadDump reads an env dump file: either the class's own dump or the full
// output of `bitbake -e <recipe>`.
func ReadDump(path string) (Vars, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading env dump: %w", err)
	}
	return ParseDump(bytes.NewReader(data), path)
}

var (
	// assignRe matches the start of a plain assignment. Bitbake names may
	// carry overrides and flags (FOO:append, FOO:pn-bar, RDEPENDS:${PN}-dev)
	// and may start with a digit (oe-core has 7ZIP_COMPRESSION_LEVEL).
	assignRe = regexp.MustCompile(`^(export[ \t]+)?([A-Za-z0-9_][A-Za-z0-9_.+:/${}~-]*)=(.*)$`)
	// funcRe matches the header of a shell or python function body.
	funcRe = regexp.MustCompile(`^(export[ \t]+)?((python|fakeroot)[ \t]+)*[A-Za-z0-9_.:+${}-]*[ \t]*\([ \t]*\)[ \t]*\{[ \t]*$`)
	// bitbakeLogRe matches the progress lines bitbake prints before the dump.
	bitbakeLogRe = regexp.MustCompile(`^(NOTE|WARNING|ERROR|DEBUG|INFO): |^(Loading cache|Loaded [0-9]+ entries|Parsing recipes|Parsing of [0-9]+ \.bb files|Summary: )`)
)

// ParseDump parses env dump text. name is used in error messages. Comments,
// blank lines, `unset` lines, function bodies and bitbake's progress lines are
// skipped; every other line must be an assignment.
func ParseDump(r io.Reader, name string) (Vars, error) {
	vars := Vars{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	lineNo := 0
	inFunc := false
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), "\r")
		if inFunc {
			if line == "}" {
				inFunc = false
			}
			continue
		}
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "", strings.HasPrefix(trimmed, "#"):
			continue
		case strings.HasPrefix(trimmed, "unset "):
			continue
		case funcRe.MatchString(line):
			inFunc = true
			continue
		case bitbakeLogRe.MatchString(line):
			continue
		}
		m := assignRe.FindStringSubmatch(trimmed)
		if m == nil {
			return nil, fmt.Errorf("%s:%d: malformed line (want NAME=\"value\"): %q", name, lineNo, clip(line))
		}
		key, rest := m[2], m[3]
		startLine := lineNo
		value, err := parseValue(rest, func() (string, bool) {
			if !sc.Scan() {
				return "", false
			}
			lineNo++
			return strings.TrimRight(sc.Text(), "\r"), true
		})
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", name, startLine, key, err)
		}
		if strings.IndexByte(value, 0) >= 0 {
			return nil, fmt.Errorf("%s:%d: %s: the value holds a NUL byte (a shell would drop it)", name, startLine, key)
		}
		vars[key] = value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, lineNo+1, err)
	}
	if inFunc {
		return nil, fmt.Errorf("%s:%d: unterminated function body", name, lineNo)
	}
	return vars, nil
}

// parseValue decodes the right-hand side of an assignment. Double-quoted
// values use bitbake's escapes (see parseDoubleQuoted); single-quoted
// values are literal; unquoted values run to the end of the line. next
// supplies continuation lines.
func parseValue(rest string, next func() (string, bool)) (string, error) {
	switch {
	case strings.HasPrefix(rest, "'"):
		end := strings.IndexByte(rest[1:], '\'')
		if end < 0 {
			return "", fmt.Errorf("unterminated single-quoted value")
		}
		if tail := strings.TrimSpace(rest[end+2:]); tail != "" && !strings.HasPrefix(tail, "#") {
			return "", fmt.Errorf("unexpected text after closing quote: %q", clip(tail))
		}
		return rest[1 : end+1], nil
	case strings.HasPrefix(rest, `"`):
		return parseDoubleQuoted(rest[1:], next)
	default:
		return strings.TrimSpace(rest), nil
	}
}

// parseDoubleQuoted decodes a value the way `bitbake -e` (bb.data.emit_var)
// and the class write it: \" \` and \$ stand for the character, " \" at the
// end of a line for a newline, and any other backslash is itself (bitbake
// does not double backslashes). A value ending in a backslash therefore
// ends in \" at the end of its line: that backslash is the value's and the
// quote closes it (a quote inside the value is never last on a line:
// bitbake writes it as \" and closes the value after it).
func parseDoubleQuoted(s string, next func() (string, bool)) (string, error) {
	var b []byte
	for {
		for i := 0; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\' && i+1 == len(s):
				// Backslash-newline: bitbake writes a newline in a value as
				// " \" at the end of the line.
				line, ok := next()
				if !ok {
					return "", fmt.Errorf("unterminated double-quoted value")
				}
				if n := len(b); n > 0 && b[n-1] == ' ' {
					b = b[:n-1]
				}
				b = append(b, '\n')
				s = line
				i = -1
			case c == '\\' && s[i+1] == '"' && strings.TrimSpace(s[i+2:]) == "":
				b = append(b, c)
				return string(b), nil
			case c == '\\' && (s[i+1] == '"' || s[i+1] == '$' || s[i+1] == '`'):
				b = append(b, s[i+1])
				i++
			case c == '"':
				if tail := strings.TrimSpace(s[i+1:]); tail != "" && !strings.HasPrefix(tail, "#") {
					return "", fmt.Errorf("unexpected text after closing quote: %q", clip(tail))
				}
				return string(b), nil
			default:
				b = append(b, c)
			}
		}
		// A raw newline inside quotes: keep it and read on.
		line, ok := next()
		if !ok {
			return "", fmt.Errorf("unterminated double-quoted value")
		}
		b = append(b, '\n')
		s = line
	}
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// FormatDump writes vars in the class's dump format (bitbake's escapes,
// backslashes as they are), sorted by name: the inverse of ParseDump for
// any value without a carriage return.
func FormatDump(vars Vars) string {
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	esc := strings.NewReplacer(`"`, `\"`, `$`, `\$`, "`", "\\`", "\n", " \\\n")
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=\"%s\"\n", k, esc.Replace(vars[k]))
	}
	return b.String()
}
