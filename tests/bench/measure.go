package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/ocireg-tool/ocireg-tool/config"
)

const mb = 1e6 // throughput is in decimal MB/s, as curl and the issue report it

func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / mb / d.Seconds() }

// throughput is the MB/s of moving bytes in each of ds.
func throughput(bytes int64, ds []time.Duration) samples {
	s := make(samples, len(ds))
	for i, d := range ds {
		s[i] = mbps(bytes, d)
	}
	return s
}

// orderFor alternates which server goes first, so drift on a busy machine
// does not favour one side.
func orderFor(i int, a, b func() error) error {
	if i%2 == 1 {
		a, b = b, a
	}
	if err := a(); err != nil {
		return err
	}
	return b()
}

// startUpload POSTs a new upload session to repo and returns its
// absolute URL (not timed: a single small request).
func startUpload(ctx context.Context, addr, repo string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v2/"+repo+"/blobs/uploads/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("POST upload: %s", resp.Status)
	}
	return absLocation(addr, resp.Header.Get("Location")), nil
}

func absLocation(addr, loc string) string {
	if strings.HasPrefix(loc, "/") {
		return "http://" + addr + loc
	}
	return loc
}

func withDigest(loc string, d v1.Hash) string {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + "digest=" + d.String()
}

// curlPut PUTs file to url with curl (a monolithic upload) and returns the
// time the curl process took.
func (b *bench) curlPut(url, file string) (time.Duration, error) {
	r, err := run(b.ctx, nil, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect:",
		"-H", "Content-Type: application/octet-stream", "-T", file, url)
	if err != nil {
		return 0, err
	}
	if r.Stdout != "201" {
		return 0, fmt.Errorf("PUT %s: HTTP %s", file, r.Stdout)
	}
	return r.Elapsed, nil
}

// measureIngest: one big blob, monolithic PUT with curl, ours vs
// docker-registry, each on fresh filesystem storage.
func (b *bench) measureIngest() error {
	o, err := b.newOurs("ingest", nil)
	if err != nil {
		return err
	}
	d, err := b.newDocker("ingest-docker")
	if err != nil {
		return err
	}
	var ours, base, oursHWM, baseHWM samples
	one := func(r registry, tp, hwm *samples) func() error {
		return func() error {
			if err := resetStorage(b.ctx, r); err != nil {
				return err
			}
			loc, err := startUpload(b.ctx, r.Addr(), "bench/ingest")
			if err != nil {
				return err
			}
			t, err := b.curlPut(withDigest(loc, b.big.Digest), b.big.Path)
			if err != nil {
				return err
			}
			*tp = append(*tp, mbps(b.big.Size, t))
			if kb, err := procStatus(r.Pid(), "VmHWM"); err == nil {
				*hwm = append(*hwm, float64(kb)/1024)
			}
			return r.Stop()
		}
	}
	for i := range b.runs {
		b.logf("ingest run %d/%d", i+1, b.runs)
		if err := orderFor(i, one(o, &ours, &oursHWM), one(d, &base, &baseHWM)); err != nil {
			return err
		}
	}
	ratio := ours.median() / base.median()
	b.add(row{Name: fmt.Sprintf("ingest: %s blob, monolithic PUT (curl)", sizeText(b.big.Size)), Ours: ours, Base: base, BaseName: "docker-registry", Unit: unitMBps,
		Ratio: ratio, RatioText: "throughput", Goal: "≥ 1.0×", Met: boolp(ratio >= 1.0)})
	b.add(row{Name: "server peak RSS during that ingest", Ours: oursHWM, Base: baseHWM, BaseName: "docker-registry", Unit: unitMiB, Ratio: math.NaN(), Goal: "report"})
	return nil
}

// measurePush: cold push, re-push, the raw-PUT ceiling and the shell
// original's skopeo + curl method, all into our server.
func (b *bench) measurePush() error {
	o, err := b.newOurs("push", map[string]string{
		"DEPLOY_DIR_IMAGES":               b.tree.Root,
		"CONTAINER_REGISTRY_TAG_STRATEGY": "timestamp latest",
	})
	if err != nil {
		return err
	}
	var cold, re, ceiling, shell, skopeoRe []time.Duration
	for i := range b.runs {
		b.logf("push run %d/%d", i+1, b.runs)
		// (a) the ceiling: the same blobs as raw PUTs with curl.
		if err := resetStorage(b.ctx, o); err != nil {
			return err
		}
		t, err := b.rawPuts(o.Addr(), "yocto/ceiling", b.tree.Blobs)
		if err != nil {
			return err
		}
		ceiling = append(ceiling, t)
		// (b) meta-virtualization's container-registry.sh: skopeo copy per image, then the
		// manifest lists with curl; then skopeo copying them again.
		if err := resetStorage(b.ctx, o); err != nil {
			return err
		}
		if t, err = b.shellPush(o.Addr()); err != nil {
			return err
		}
		shell = append(shell, t)
		if t, err = b.skopeoCopies(o.Addr()); err != nil {
			return err
		}
		skopeoRe = append(skopeoRe, t)
		// ours: cold, then again with nothing changed. Last, so the
		// pull measurement finds our push's content.
		if err := resetStorage(b.ctx, o); err != nil {
			return err
		}
		r, err := o.Run(b.ctx, "push")
		if err != nil {
			return err
		}
		if up := uploaded(r.Stdout + r.Stderr); up < b.tree.Bytes {
			return fmt.Errorf("cold push uploaded %d bytes, want at least %d:\n%s", up, b.tree.Bytes, tail(r.Stdout+r.Stderr))
		}
		cold = append(cold, r.Elapsed)
		r, err = o.Run(b.ctx, "push")
		if err != nil {
			return err
		}
		if up := uploaded(r.Stdout + r.Stderr); up != 0 {
			return fmt.Errorf("re-push uploaded %d bytes, want 0:\n%s", up, tail(r.Stdout+r.Stderr))
		}
		re = append(re, r.Elapsed)
		b.lastPushOut = r.Stdout + r.Stderr
	}
	treeDesc := fmt.Sprintf("%d machines × %d images × %d layers of %s", len(machines), len(b.tree.Names), b.layers, sizeText(b.layerSize))
	tp := func(ds []time.Duration) samples { return throughput(b.tree.Bytes, ds) }
	r1 := tp(cold).median() / tp(ceiling).median()
	b.add(row{Name: "cold push (" + treeDesc + ")", Ours: tp(cold), Base: tp(ceiling), BaseName: "raw PUTs with curl, 4 parallel", Unit: unitMBps,
		Ratio: r1, RatioText: "of the ceiling", Goal: "≥ 0.95×", Met: boolp(r1 >= 0.95)})
	r2 := seconds(shell).median() / seconds(cold).median()
	b.add(row{Name: "cold push vs the shell method", Ours: seconds(cold), Base: seconds(shell), BaseName: "skopeo copy + curl manifest lists", Unit: unitSeconds,
		Ratio: r2, RatioText: "faster", Goal: "≥ 2×", Met: boolp(r2 >= 2)})
	r3 := seconds(re).median() / seconds(cold).median()
	b.add(row{Name: "re-push, unchanged tree (0 bytes uploaded)", Ours: seconds(re), Base: seconds(cold), BaseName: "our cold push", Unit: unitSeconds,
		Ratio: r3, RatioText: "of cold", Goal: "≤ 0.05×", Met: boolp(r3 <= 0.05)})
	r4 := seconds(skopeoRe).median() / seconds(re).median()
	b.add(row{Name: "re-push vs skopeo re-copying", Ours: seconds(re), Base: seconds(skopeoRe), BaseName: "skopeo copy × " + strconv.Itoa(len(b.tree.Images)), Unit: unitSeconds,
		Ratio: r4, RatioText: "faster", Goal: "≥ 20×", Met: boolp(r4 >= 20)})
	b.pushed = o
	return nil
}

var (
	uploadedRE = regexp.MustCompile(`uploaded (\d+) bytes`)
	maxRSSRE   = regexp.MustCompile(`maxrss-kib=(\d+)`)
)

// uploaded is the byte count of a push summary, -1 when there is none.
func uploaded(out string) int64 {
	m := uploadedRE.FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// rawPuts uploads blobs into repo as a client with no registry logic
// would: one curl starts every upload session, one curl PUTs every blob
// monolithically, 4 at a time (push's parallelism). Both are timed.
func (b *bench) rawPuts(addr, repo string, blobs []blobFile) (time.Duration, error) {
	start := time.Now()
	post := []string{"-sS", "-X", "POST", "-o", "/dev/null", "-D", "-"}
	for range blobs {
		post = append(post, "http://"+addr+"/v2/"+repo+"/blobs/uploads/")
	}
	r, err := run(b.ctx, nil, "curl", post...)
	if err != nil {
		return 0, err
	}
	var locs []string
	sc := bufio.NewScanner(strings.NewReader(r.Stdout))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.EqualFold(k, "location") {
			locs = append(locs, absLocation(addr, strings.TrimSpace(v)))
		}
	}
	if len(locs) != len(blobs) {
		return 0, fmt.Errorf("started %d uploads, want %d", len(locs), len(blobs))
	}
	put := []string{"-sS", "--parallel", "--parallel-max", "4", "-H", "Expect:", "-H", "Content-Type: application/octet-stream", "-w", "%{http_code}\n"}
	for i, bl := range blobs {
		put = append(put, "-T", bl.Path, "-o", "/dev/null", withDigest(locs[i], bl.Digest))
	}
	if r, err = run(b.ctx, nil, "curl", put...); err != nil {
		return 0, err
	}
	elapsed := time.Since(start)
	if got := strings.Count(r.Stdout, "201"); got != len(blobs) {
		return 0, fmt.Errorf("raw PUTs: %d of %d answered 201: %q", got, len(blobs), r.Stdout)
	}
	return elapsed, nil
}

const shellTimestampTag = "20260108-123456"

// skopeoCopies copies every image build of the tree to
// <name>:<timestamp>-<arch> with skopeo, one process per build, as
// meta-virtualization's container-registry.sh did.
func (b *bench) skopeoCopies(addr string) (time.Duration, error) {
	start := time.Now()
	for _, im := range b.tree.Images {
		dst := fmt.Sprintf("docker://%s/yocto/%s:%s-%s", addr, im.Name, shellTimestampTag, im.Machine.YoctoArc)
		if _, err := run(b.ctx, nil, "skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:"+im.Dir+":latest", dst); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// shellPush is the push of meta-virtualization's container-registry.sh:
// skopeo copy of each build, then per tag a manifest list (OCI index) of the arch manifests, each looked up
// with curl and written with curl. The JSON is assembled in this process
// (the original spawned python3 for it), which flatters the baseline.
func (b *bench) shellPush(addr string) (time.Duration, error) {
	start := time.Now()
	if _, err := b.skopeoCopies(addr); err != nil {
		return 0, err
	}
	tmp, err := os.MkdirTemp(b.work, "shell-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	for _, name := range b.tree.Names {
		for _, tag := range []string{shellTimestampTag, "latest"} {
			var entries []v1.Descriptor
			for _, m := range machines {
				u := fmt.Sprintf("http://%s/v2/yocto/%s/manifests/%s-%s", addr, name, shellTimestampTag, m.YoctoArc)
				r, err := run(b.ctx, nil, "curl", "-sSfI", "-H", "Accept: "+string(types.OCIManifestSchema1), "-H", "Accept: "+string(types.DockerManifestSchema2), u)
				if err != nil {
					return 0, err
				}
				desc, err := descFromHeaders(r.Stdout)
				if err != nil {
					return 0, fmt.Errorf("%s: %w", u, err)
				}
				desc.Platform = &v1.Platform{OS: "linux", Architecture: m.Platform}
				entries = append(entries, desc)
			}
			body, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: entries})
			if err != nil {
				return 0, err
			}
			f := filepath.Join(tmp, name+"-"+tag+".json")
			if err := os.WriteFile(f, body, 0o644); err != nil {
				return 0, err
			}
			u := fmt.Sprintf("http://%s/v2/yocto/%s/manifests/%s", addr, name, tag)
			if _, err := run(b.ctx, nil, "curl", "-sSf", "-o", "/dev/null", "-X", "PUT", "-H", "Content-Type: "+string(types.OCIImageIndex), "--data-binary", "@"+f, u); err != nil {
				return 0, err
			}
		}
	}
	return time.Since(start), nil
}

// descFromHeaders reads digest, size and media type from a manifest HEAD.
func descFromHeaders(h string) (v1.Descriptor, error) {
	var d v1.Descriptor
	sc := bufio.NewScanner(strings.NewReader(h))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "docker-content-digest":
			hh, err := v1.NewHash(v)
			if err != nil {
				return d, err
			}
			d.Digest = hh
		case "content-length":
			d.Size, _ = strconv.ParseInt(v, 10, 64)
		case "content-type":
			d.MediaType = types.MediaType(v)
		}
	}
	if d.Digest.Hex == "" || d.Size == 0 {
		return d, fmt.Errorf("no digest or size in %q", h)
	}
	return d, nil
}

// measurePull: skopeo copy of every image (all platforms) to an OCI layout,
// from our server and from docker-registry serving a copy of the same
// storage.
func (b *bench) measurePull() error {
	o := b.pushed
	if o == nil {
		return fmt.Errorf("pull needs the push measurement's registry")
	}
	if err := o.Stop(); err != nil {
		return err
	}
	d, err := b.newDocker("pull-docker")
	if err != nil {
		return err
	}
	if err := copyTree(o.DataDir(), d.DataDir()); err != nil {
		return err
	}
	for _, r := range []registry{o, d} {
		if _, err := r.Start(b.ctx); err != nil {
			return err
		}
	}
	var ours, base []time.Duration
	one := func(r registry, out *[]time.Duration) func() error {
		return func() error {
			t, err := b.pullAll(r.Addr())
			*out = append(*out, t)
			return err
		}
	}
	for i := range b.runs {
		b.logf("pull run %d/%d", i+1, b.runs)
		if err := orderFor(i, one(o, &ours), one(d, &base)); err != nil {
			return err
		}
	}
	tp := func(ds []time.Duration) samples { return throughput(b.tree.Bytes, ds) }
	ratio := tp(ours).median() / tp(base).median()
	b.add(row{Name: fmt.Sprintf("pull: skopeo copy --all of the %d images", len(b.tree.Names)), Ours: tp(ours), Base: tp(base), BaseName: "docker-registry", Unit: unitMBps,
		Ratio: ratio, RatioText: "throughput", Goal: "≥ 0.9×", Met: boolp(ratio >= 0.9)})
	o.Stop()
	return d.Stop()
}

// measureMemory: peak RSS of `push` of one image with a single big layer.
func (b *bench) measureMemory() error {
	layoutDir := filepath.Join(b.work, "bigimage-oci")
	if _, err := os.Stat(layoutDir); err != nil {
		if err := writeBigLayout(layoutDir, b.big); err != nil {
			return err
		}
	}
	o, err := b.newOurs("memory", map[string]string{"CONTAINER_REGISTRY_TAG_STRATEGY": "latest"})
	if err != nil {
		return err
	}
	var rss, tp samples
	for i := range b.runs {
		b.logf("memory run %d/%d", i+1, b.runs)
		if err := resetStorage(b.ctx, o); err != nil {
			return err
		}
		// Measured by /usr/bin/time (fork, then exec): the rusage of a
		// child this process starts would include this process's own
		// peak, as os/exec shares its memory until the exec.
		r, err := run(b.ctx, o.env, "/usr/bin/time", "-f", "maxrss-kib=%M", o.script, "push", layoutDir)
		if err != nil {
			return err
		}
		if up := uploaded(r.Stdout + r.Stderr); up < b.big.Size {
			return fmt.Errorf("big push uploaded %d bytes, want %d", up, b.big.Size)
		}
		m := maxRSSRE.FindStringSubmatch(r.Stderr)
		if m == nil {
			return fmt.Errorf("no maxrss-kib= line from /usr/bin/time:\n%s", tail(r.Stderr))
		}
		kib, _ := strconv.ParseInt(m[1], 10, 64)
		rss = append(rss, float64(kib)/1024)
		tp = append(tp, mbps(b.big.Size, r.Elapsed))
	}
	b.add(row{Name: fmt.Sprintf("push peak RSS, one %s layer", sizeText(b.big.Size)), Ours: rss, Unit: unitMiB, Ratio: math.NaN(),
		Goal: "≤ 100 MiB", Met: boolp(rss.max() <= 100), Note: "max " + unitMiB.format(rss.max())})
	b.add(row{Name: "  that push's throughput", Ours: tp, Unit: unitMBps, Ratio: math.NaN(), Goal: "report"})
	return o.Stop()
}

// measureGenerate: `ocireg-tool generate` in secure mode on a fresh
// storage directory (CA, server certificate, htpasswd), with hyperfine.
func (b *bench) measureGenerate() error {
	dir := filepath.Join(b.work, "generate")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	storage := filepath.Join(dir, "container-registry")
	dump := filepath.Join(dir, "env.dump")
	vars := map[string]string{
		"TOPDIR":                     dir,
		"CONTAINER_REGISTRY_STORAGE": storage,
		"CONTAINER_REGISTRY_URL":     fmt.Sprintf("127.0.0.1:%d", port),
		"CONTAINER_REGISTRY_SECURE":  "1",
	}
	if err := os.WriteFile(dump, []byte(config.FormatDump(vars)), 0o644); err != nil {
		return err
	}
	runs := max(b.runs*2, 10)
	var times samples
	if hf, err := exec.LookPath("hyperfine"); err == nil {
		out := filepath.Join(dir, "hyperfine.json")
		_, err := run(b.ctx, nil, hf, "--shell=none", "--style=none", "--warmup", "1", "--runs", strconv.Itoa(runs),
			"--prepare", "rm -rf "+storage, "--export-json", out, b.tool+" generate --env-dump "+dump)
		if err != nil {
			return err
		}
		var res struct {
			Results []struct {
				Times []float64 `json:"times"`
			} `json:"results"`
		}
		data, err := os.ReadFile(out)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &res); err != nil || len(res.Results) != 1 {
			return fmt.Errorf("reading %s: %v", out, err)
		}
		times = res.Results[0].Times
	} else {
		for range runs {
			os.RemoveAll(storage)
			r, err := run(b.ctx, nil, b.tool, "generate", "--env-dump", dump)
			if err != nil {
				return err
			}
			times = append(times, r.Elapsed.Seconds())
		}
	}
	for _, f := range []string{"pki/ca.crt", "pki/server.key", "container-registry.sh"} {
		if _, err := os.Stat(filepath.Join(storage, f)); err != nil {
			return fmt.Errorf("generate in secure mode did not write %s", f)
		}
	}
	m := times.median()
	b.add(row{Name: "generate with PKI (secure mode, fresh storage)", Ours: times, Unit: unitSeconds, Ratio: math.NaN(), Goal: "≤ 300 ms", Met: boolp(m <= 0.3)})
	return nil
}

// countBlobs counts the blob data files of a distribution storage root.
func countBlobs(root string) (int, error) {
	n := 0
	err := filepath.WalkDir(filepath.Join(root, "docker", "registry", "v2", "blobs"), func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.IsDir() && de.Name() == "data" {
			n++
		}
		return nil
	})
	return n, err
}

// copyTree copies src to dst (which must not exist yet) with cp -a.
func copyTree(src, dst string) error {
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd := exec.Command("cp", "-a", src, dst)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cp -a %s %s: %v: %s", src, dst, err, stderr.String())
	}
	return nil
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
