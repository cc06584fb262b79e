// Package shellquote owns the tool's shell quoting: Quote for words a
// generated POSIX script holds, Word for paths and values in lines a user
// reads and may copy into a shell.
package shellquote

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Word renders s, a path or a value from the configuration, for a
// line a user reads and may copy into a shell:
//   - as it is when every character is one no shell treats specially;
//   - in single quotes when it holds spaces or shell metacharacters;
//   - as a $'...' string (bash, zsh, ksh) with escapes when it holds
//     control or invisible characters or bytes that are not UTF-8, so the
//     terminal shows them instead of obeying them (an ESC sequence could
//     recolour or rewrite the screen).
//
// Either quoted form, pasted into bash, gives back exactly s.
func Word(s string) string {
	if s == "" {
		return "''"
	}
	plain, printable := true, true
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1, !unicode.IsPrint(r):
			printable = false
		case !isShellSafe(r):
			plain = false
		}
	}
	switch {
	case !printable:
		return ansiCQuote(s)
	case plain:
		return s
	}
	return Quote(s)
}

// Quote single-quotes s for a POSIX shell, whatever it holds.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// isShellSafe reports whether r means itself to a shell wherever it
// stands in a word (not '~', which expands at the start).
func isShellSafe(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	case strings.ContainsRune("@%+=:,./_-", r):
		return true
	}
	return r >= utf8.RuneSelf && unicode.IsPrint(r) && !unicode.IsSpace(r)
}

// ansiCQuote is s as a $'...' string: printable characters as they are,
// the usual escapes for the C control characters, \xHH for other bytes
// below 0x80 and for bytes that are not UTF-8, \uHHHH or \UHHHHHHHH for
// runes a terminal would not show.
func ansiCQuote(s string) string {
	var b strings.Builder
	b.WriteString("$'")
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\' || r == '\'':
			b.WriteByte('\\')
			b.WriteRune(r)
		case unicode.IsPrint(r):
			b.WriteRune(r)
		case r < utf8.RuneSelf:
			if esc, ok := cEscapes[r]; ok {
				b.WriteString(esc)
			} else {
				fmt.Fprintf(&b, `\x%02x`, r)
			}
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += size
	}
	b.WriteByte('\'')
	return b.String()
}

var cEscapes = map[rune]string{'\a': `\a`, '\b': `\b`, '\x1b': `\e`, '\f': `\f`, '\n': `\n`, '\r': `\r`, '\t': `\t`, '\v': `\v`}

// Words renders each of ss with Word, joined by spaces.
func Words(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = Word(s)
	}
	return strings.Join(out, " ")
}
