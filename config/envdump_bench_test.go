package config

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// BenchmarkParseDumpBitbakeE reads a real 1.1 MB `bitbake -e` output.
func BenchmarkParseDumpBitbakeE(b *testing.B) {
	data, err := os.ReadFile("testdata/bitbake-e-base-files.txt")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if _, err := ParseDump(bytes.NewReader(data), "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseDumpContinuations reads one value spanning 40,000 lines:
// linear time (it was quadratic before the fuzzer found it).
func BenchmarkParseDumpContinuations(b *testing.B) {
	in := "A=\"" + strings.Repeat("x \\\n", 40000) + "\"\n"
	b.SetBytes(int64(len(in)))
	for i := 0; i < b.N; i++ {
		if _, err := ParseDump(strings.NewReader(in), "bench"); err != nil {
			b.Fatal(err)
		}
	}
}
