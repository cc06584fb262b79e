package sample

import (
	"bytes"
	"compress/gzip"
	"testing"
)

// Filler: zero leaves the image as it was; a size gives a layer of about
// that many bytes, the same for the same Spec and different for another
// stamp, while the base layer stays shared.
func TestFiller(t *testing.T) {
	s := Spec{Name: "app", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260108123456"}
	digest := func(s Spec) (base, app string, size int64) {
		t.Helper()
		img, err := Image(s)
		if err != nil {
			t.Fatal(err)
		}
		ls, err := img.Layers()
		if err != nil || len(ls) != 2 {
			t.Fatalf("layers: %v %d", err, len(ls))
		}
		b, _ := ls[0].Digest()
		a, _ := ls[1].Digest()
		n, _ := ls[1].Size()
		return b.String(), a.String(), n
	}
	base0, app0, size0 := digest(s)
	s.Filler = 0
	if b, a, _ := digest(s); b != base0 || a != app0 {
		t.Fatal("Filler 0 changed the image")
	}
	s.Filler = 4096
	base1, app1, size1 := digest(s)
	if base1 != base0 || app1 == app0 {
		t.Fatalf("Filler 4096: base %s (was %s), app %s (was %s)", base1, base0, app1, app0)
	}
	if size1 < size0+4096 {
		t.Fatalf("Filler 4096: compressed layer %d bytes, want at least %d", size1, size0+4096)
	}
	if _, a, _ := digest(s); a != app1 {
		t.Fatal("Filler is not deterministic")
	}
	s2 := s
	s2.Stamp = "20260108123457"
	if b, a, _ := digest(s2); b != base1 || a == app1 {
		t.Fatal("another stamp must change the app layer only")
	}
	// Incompressible: gzip does not shrink it.
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(filler(s)))
	zw.Close()
	if buf.Len() < 4096 {
		t.Fatalf("filler compresses to %d bytes", buf.Len())
	}
}
