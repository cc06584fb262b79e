package main

import (
	"fmt"
	"regexp"
	"slices"
	"time"
)

// The cost of signing: the push tree pushed cold and again unchanged with
// CONTAINER_REGISTRY_SIGN=1 (every index and platform manifest signed
// with the generated key) and =0, alternately on one registry.

var signedRE = regexp.MustCompile(`Signed: (\d+) manifest\(s\) with key sha256:[0-9a-f]{64}, (\d+) already signed`)

func (b *bench) measureSign() error {
	o, err := b.newOurs("sign", map[string]string{
		"DEPLOY_DIR_IMAGES":               b.tree.Root,
		"CONTAINER_REGISTRY_TAG_STRATEGY": "timestamp latest",
		"CONTAINER_REGISTRY_SIGN":         "1", // the key is made at generate
	})
	if err != nil {
		return err
	}
	base := o.env
	defer func() { o.env = base }()
	var coldOn, coldOff, reOn, reOff []time.Duration
	push := func(sign bool, cold bool) (time.Duration, error) {
		o.env = append(slices.Clone(base), fmt.Sprintf("CONTAINER_REGISTRY_SIGN=%d", map[bool]int{false: 0, true: 1}[sign]))
		r, err := o.Run(b.ctx, "push")
		if err != nil {
			return 0, err
		}
		out := r.Stdout + r.Stderr
		up := uploaded(out)
		if cold && up < b.tree.Bytes || !cold && up != 0 {
			return 0, fmt.Errorf("push (sign %v, cold %v) uploaded %d bytes:\n%s", sign, cold, up, tail(out))
		}
		m := signedRE.FindStringSubmatch(out)
		switch {
		case sign && m == nil:
			return 0, fmt.Errorf("signed push without a Signed line:\n%s", tail(out))
		case sign && cold && m[1] == "0", sign && !cold && m[1] != "0":
			return 0, fmt.Errorf("push (cold %v) signed %s manifest(s):\n%s", cold, m[1], tail(out))
		case !sign && m != nil:
			return 0, fmt.Errorf("unsigned push signed:\n%s", tail(out))
		}
		return r.Elapsed, nil
	}
	for i := range b.runs {
		b.logf("sign run %d/%d", i+1, b.runs)
		for _, sign := range []bool{i%2 == 0, i%2 != 0} {
			if err := resetStorage(b.ctx, o); err != nil {
				return err
			}
			cold, err := push(sign, true)
			if err != nil {
				return err
			}
			re, err := push(sign, false)
			if err != nil {
				return err
			}
			if sign {
				coldOn, reOn = append(coldOn, cold), append(reOn, re)
			} else {
				coldOff, reOff = append(coldOff, cold), append(reOff, re)
			}
		}
	}
	r1 := seconds(coldOn).median() / seconds(coldOff).median()
	b.add(row{Name: "cold push, signing on", Ours: seconds(coldOn), Base: seconds(coldOff), BaseName: "the same push, signing off", Unit: unitSeconds,
		Ratio: r1, RatioText: "of unsigned", Goal: "≤ 1.1×", Met: boolp(r1 <= 1.1)})
	r2 := seconds(reOn).median() / seconds(reOff).median()
	b.add(row{Name: "re-push, signing on (nothing signed, 0 bytes uploaded)", Ours: seconds(reOn), Base: seconds(reOff), BaseName: "the same re-push, signing off", Unit: unitSeconds,
		Ratio: r2, RatioText: "of unsigned", Goal: "≤ 1.1× (unchanged)", Met: boolp(r2 <= 1.1)})
	return nil
}
