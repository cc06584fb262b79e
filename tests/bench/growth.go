package main

import (
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// The growth measurement: growthBuilds successive builds of growthImages
// images × every machine, each build with new content in all but the
// first layer of every image, pushed with the default tag strategy
// (timestamp latest) into two registries: one with the retention policy
// keep growthKeep, pruning on every push, one without a policy.
const (
	growthBuilds = 30
	growthKeep   = 5
	growthImages = 2
	growthLayers = 3 // the first shared by every build
	growthShared = 1
	growthLayer  = 128 << 10
	growthSeed   = 9_000_000_000
)

var timestampTagRE = regexp.MustCompile(`^[0-9]{8}-[0-9]{6}$`)

func (b *bench) measureGrowth() error {
	keep, err := b.newOurs("growth-keep", map[string]string{
		"DEPLOY_DIR_IMAGES":                    filepath.Join(b.work, "growth-images"),
		"CONTAINER_REGISTRY_RETENTION_KEEP":    fmt.Sprint(growthKeep),
		"CONTAINER_REGISTRY_RETENTION_ON_PUSH": "1",
	})
	if err != nil {
		return err
	}
	all, err := b.newOurs("growth-all", map[string]string{
		"DEPLOY_DIR_IMAGES": filepath.Join(b.work, "growth-images"),
	})
	if err != nil {
		return err
	}
	for _, o := range []*ours{keep, all} {
		if _, err := o.Start(b.ctx); err != nil {
			return err
		}
	}
	var keepPush, allPush []time.Duration
	var perBuild, shared int64 // blob bytes new in every build, and those every build shares
	for n := 1; n <= growthBuilds; n++ {
		if err := b.ctx.Err(); err != nil {
			return err
		}
		root := filepath.Join(b.work, "growth-images")
		if err := os.RemoveAll(root); err != nil {
			return err
		}
		t, err := writeBuildTree(root, "grow-app", growthImages, growthLayers, growthShared, growthLayer, growthSeed, n)
		if err != nil {
			return err
		}
		if n == 1 {
			first, err := writeBuildTree(filepath.Join(b.work, "growth-first"), "grow-app", growthImages, growthLayers, growthShared, growthLayer, growthSeed, 0)
			if err != nil {
				return err
			}
			perBuild, shared = splitBytes(t, first)
			os.RemoveAll(first.Root)
		}
		// A timestamp tag has one-second resolution: each build's pushes
		// start in a second of their own.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		push := func(o *ours, out *[]time.Duration) func() error {
			return func() error {
				r, err := o.Run(b.ctx, "push")
				if err != nil {
					return err
				}
				*out = append(*out, r.Elapsed)
				return nil
			}
		}
		if err := orderFor(n, push(keep, &keepPush), push(all, &allPush)); err != nil {
			return err
		}
	}
	var bytes [2]int64
	var tags [2]int
	for i, o := range []*ours{keep, all} {
		if err := o.Stop(); err != nil {
			return err
		}
		if bytes[i], err = dirBytes(o.DataDir()); err != nil {
			return err
		}
		if tags[i], err = countTimestampTags(o.DataDir()); err != nil {
			return err
		}
	}
	// The bound: the blobs of the newest growthKeep builds and the shared
	// ones, plus 10% for manifests, indexes, links and tag directories.
	bound := 1.1 * float64(shared+growthKeep*perBuild)
	ratio := float64(bytes[0]) / float64(bytes[1])
	wantTags := growthKeep * growthImages
	b.add(row{Name: fmt.Sprintf("storage after %d builds, retention keep %d with prune on push", growthBuilds, growthKeep),
		Ours: samples{float64(bytes[0]) / (1 << 20)}, Base: samples{float64(bytes[1]) / (1 << 20)}, BaseName: "no retention policy", Unit: unitMiB,
		Ratio: ratio, RatioText: "of the storage without a policy", Goal: fmt.Sprintf("≤ %s (%d builds + shared blobs) and %d timestamp tags", unitMiB.format(bound/(1<<20)), growthKeep, wantTags),
		Met: boolp(float64(bytes[0]) <= bound && tags[0] == wantTags)})
	b.add(row{Name: "  push with prune on push, per build", Ours: seconds(keepPush), Base: seconds(allPush), BaseName: "push without a policy", Unit: unitSeconds,
		Ratio: seconds(keepPush).median() / seconds(allPush).median(), RatioText: "of the push without", Goal: "report"})
	b.notef("growth: %d builds of %d images × %d machines (%d layers of %s each, the first the same in every build), pushed one after another with the default strategy `timestamp latest` into two registries, each push in a second of its own. With CONTAINER_REGISTRY_RETENTION_KEEP=%d and CONTAINER_REGISTRY_RETENTION_ON_PUSH=1 the storage ends at %d bytes (%s) with %d timestamp tags; without a policy at %d bytes (%s) with %d. Blob bytes: %d new in every build, %d shared by all; bound asserted: (shared + %d × per build) × 1.1 = %.0f bytes. Storage is the apparent size of every file below data/.",
		growthBuilds, growthImages, len(machines), growthLayers, sizeText(growthLayer), growthKeep, bytes[0], unitMiB.format(float64(bytes[0])/(1<<20)), tags[0], bytes[1], unitMiB.format(float64(bytes[1])/(1<<20)), tags[1], perBuild, shared, growthKeep, bound)
	if math.IsNaN(ratio) {
		return fmt.Errorf("growth: no storage measured")
	}
	return nil
}

// splitBytes is the blob bytes of build t that another build (other) does
// not have, and those both have.
func splitBytes(t, other *tree) (own, both int64) {
	seen := map[string]bool{}
	for _, bl := range other.Blobs {
		seen[bl.Digest.String()] = true
	}
	for _, bl := range t.Blobs {
		if seen[bl.Digest.String()] {
			both += bl.Size
		} else {
			own += bl.Size
		}
	}
	return own, both
}

// dirBytes is the apparent size of every regular file below root.
func dirBytes(root string) (int64, error) {
	var n int64
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.Type().IsRegular() {
			fi, err := de.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

// countTimestampTags counts the timestamp tags of every repository of a
// distribution storage root.
func countTimestampTags(root string) (int, error) {
	n := 0
	err := filepath.WalkDir(filepath.Join(root, "docker", "registry", "v2", "repositories"), func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() && filepath.Base(filepath.Dir(p)) == "tags" && timestampTagRE.MatchString(de.Name()) {
			n++
			return filepath.SkipDir
		}
		return nil
	})
	return n, err
}
