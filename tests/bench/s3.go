package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/s3"
)

// s3Engine is SeaweedFS (S3 with credentials) and redis-server on
// loopback, for the shared-storage measurements.
type s3Engine struct {
	endpoint, bucket string
	creds            string // 0600 credentials file
	curlCfg          string // 0600 curl config: the same credentials, SigV4
	redis            string
	procs            []*exec.Cmd
	// dbs maps each prefix to its redis database: distribution's blob
	// descriptor cache has no key prefix, so registries on different
	// storage must not share one.
	dbs map[string]int
}

// startS3Engine starts SeaweedFS (the binary tests/seaweedfs.sh names,
// built by make deps) and redis-server below dir.
func startS3Engine(ctx context.Context, dir string) (*s3Engine, error) {
	out, err := exec.Command("sh", "tests/seaweedfs.sh", "path").Output()
	if err != nil {
		return nil, fmt.Errorf("tests/seaweedfs.sh path: %w", err)
	}
	weed := strings.TrimSpace(string(out))
	if _, err := os.Stat(weed); err != nil {
		return nil, fmt.Errorf("SeaweedFS not built at %s (make deps builds it)", weed)
	}
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is required (make deps installs it)")
	}
	key := make([]byte, 20)
	_, _ = rand.Read(key)
	ak, sk := "BENCH"+hex.EncodeToString(key[:6]), hex.EncodeToString(key)
	conf, _ := json.Marshal(map[string]any{"identities": []any{map[string]any{"name": "bench",
		"credentials": []any{map[string]string{"accessKey": ak, "secretKey": sk}}, "actions": []string{"Admin", "Read", "List", "Tagging", "Write"}}}})
	e := &s3Engine{bucket: "bench", creds: filepath.Join(dir, "s3.creds")}
	if err := os.WriteFile(filepath.Join(dir, "s3.json"), conf, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(e.creds, []byte("AWS_ACCESS_KEY_ID="+ak+"\nAWS_SECRET_ACCESS_KEY="+sk+"\n"), 0o600); err != nil {
		return nil, err
	}
	// curl reads the keys from a file (-K), never from its arguments.
	e.curlCfg = filepath.Join(dir, "s3.curlrc")
	if err := os.WriteFile(e.curlCfg, []byte(fmt.Sprintf("user = \"%s:%s\"\naws-sigv4 = \"aws:amz:us-east-1:s3\"\n", ak, sk)), 0o600); err != nil {
		return nil, err
	}
	ports := make([]string, 9)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = fmt.Sprint(p)
	}
	data := filepath.Join(dir, "weed")
	os.MkdirAll(data, 0o755)
	e.endpoint = "http://127.0.0.1:" + ports[6]
	e.start(ctx, dir, weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir="+data,
		"-master.port="+ports[0], "-master.port.grpc="+ports[1], "-master.volumeSizeLimitMB=1024",
		"-volume.port="+ports[2], "-volume.port.grpc="+ports[3], "-volume.max=0",
		"-filer", "-filer.port="+ports[4], "-filer.port.grpc="+ports[5],
		"-s3", "-s3.port="+ports[6], "-s3.port.grpc="+ports[7], "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.config="+filepath.Join(dir, "s3.json"))
	e.redis = "127.0.0.1:" + ports[8]
	e.start(ctx, dir, redisBin, "--port", ports[8], "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	return e, e.createBucket(ak, sk)
}

func (e *s3Engine) start(ctx context.Context, dir, bin string, args ...string) {
	log, _ := os.OpenFile(filepath.Join(dir, filepath.Base(bin)+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = baseEnv(), dir, log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err == nil {
		e.procs = append(e.procs, cmd)
	}
}

// createBucket creates the bucket once the engine answers, then writes one
// object so that its first volume exists before anything is measured.
func (e *s3Engine) createBucket(ak, sk string) error {
	sess, err := session.NewSession(aws.NewConfig().WithEndpoint(e.endpoint).WithRegion("us-east-1").WithS3ForcePathStyle(true).
		WithCredentials(credentials.NewStaticCredentials(ak, sk, "")).WithMaxRetries(0).WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
	if err != nil {
		return err
	}
	cl := s3.New(sess)
	deadline := time.Now().Add(90 * time.Second)
	for {
		_, err := cl.CreateBucket(&s3.CreateBucketInput{Bucket: aws.String(e.bucket)})
		if err == nil || strings.Contains(err.Error(), "BucketAlready") {
			if _, err = cl.PutObject(&s3.PutObjectInput{Bucket: aws.String(e.bucket), Key: aws.String("ready"), Body: bytes.NewReader([]byte("ok"))}); err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("SeaweedFS at %s not ready: %v", e.endpoint, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// Stop stops both servers.
func (e *s3Engine) Stop() {
	for _, c := range e.procs {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second): // SeaweedFS can take much longer
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
}

// directPuts uploads files to keys below prefix in the bucket as a
// client of S3 alone would: one signed PUT each (curl --aws-sigv4, the
// engine's credentials), parallel at a time, all from one curl process.
// The time is that process's.
// (curl's own Expect: 100-continue stays: an emptied Expect header is
// signed but not sent, and the signature no longer matches.)
func (e *s3Engine) directPuts(ctx context.Context, prefix string, files []string, parallel int) (time.Duration, error) {
	args := []string{"-K", e.curlCfg, "-sS", "-H", "Content-Type: application/octet-stream", "-w", "%{http_code}\n"}
	if parallel > 1 {
		args = append(args, "--parallel", "--parallel-max", fmt.Sprint(parallel))
	}
	for i, f := range files {
		args = append(args, "-T", f, "-o", "/dev/null", fmt.Sprintf("%s/%s/%s/%d", e.endpoint, e.bucket, prefix, i))
	}
	r, err := run(ctx, nil, "curl", args...)
	if err != nil {
		return 0, err
	}
	if got := strings.Count(r.Stdout, "200"); got != len(files) {
		return 0, fmt.Errorf("direct S3 PUTs: %d of %d answered 200: %q", got, len(files), r.Stdout)
	}
	return r.Elapsed, nil
}

// copyObject copies key src of the bucket to dst with one signed
// CopyObject (the server copies; no data through the client) and returns
// the time that took.
func (e *s3Engine) copyObject(ctx context.Context, src, dst string) (time.Duration, error) {
	r, err := run(ctx, nil, "curl", "-K", e.curlCfg, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
		"-H", "x-amz-copy-source: /"+e.bucket+"/"+src, e.endpoint+"/"+e.bucket+"/"+dst)
	if err != nil {
		return 0, err
	}
	if r.Stdout != "200" {
		return 0, fmt.Errorf("copying %s to %s: HTTP %s", src, dst, r.Stdout)
	}
	return r.Elapsed, nil
}

// pullAll copies every image of the push tree (`latest`, all platforms)
// from addr to an OCI layout with skopeo, one image after another, and
// returns the time that took.
func (b *bench) pullAll(addr string) (time.Duration, error) {
	dest := filepath.Join(b.work, "pulled")
	if err := os.RemoveAll(dest); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return 0, err
	}
	start := time.Now()
	for _, name := range b.tree.Names {
		src := fmt.Sprintf("docker://%s/yocto/%s:latest", addr, name)
		if _, err := run(b.ctx, nil, "skopeo", "copy", "--quiet", "--all", "--src-tls-verify=false", src, "oci:"+filepath.Join(dest, name)+":latest"); err != nil {
			return 0, err
		}
	}
	took := time.Since(start)
	return took, os.RemoveAll(dest)
}

// onS3 points o at prefix of the engine's bucket (through the environment,
// which wins over the helper's baked values) and restarts it there.
func (e *s3Engine) onS3(ctx context.Context, o *ours, prefix string) error {
	if err := o.Stop(); err != nil {
		return err
	}
	if e.dbs == nil {
		e.dbs = map[string]int{}
	}
	db, ok := e.dbs[prefix]
	if !ok {
		db = len(e.dbs)
		e.dbs[prefix] = db
	}
	if db > 15 {
		return fmt.Errorf("more than 16 S3 prefixes: redis has 16 databases (fewer -runs)")
	}
	o.env = []string{
		fmt.Sprintf("CONTAINER_REGISTRY_BACKEND=s3://%s/%s?endpoint=%s&region=us-east-1", e.bucket, prefix, e.endpoint),
		fmt.Sprintf("CONTAINER_REGISTRY_REDIS=%s/%d", e.redis, db),
		"CONTAINER_REGISTRY_BACKEND_CREDENTIALS=" + e.creds,
	}
	_, err := o.Start(ctx)
	return err
}

// measureS3: ingest and cold push into the S3-backed registry (one
// replica, and for push two replicas on one bucket each pushing one
// machine) against the filesystem one, alternating in the same run.
func (b *bench) measureS3() error {
	eng, err := startS3Engine(b.ctx, b.work)
	if err != nil {
		return err
	}
	defer eng.Stop()
	if err := b.s3Ingest(eng); err != nil {
		return err
	}
	return b.s3Push(eng)
}

func (b *bench) s3Ingest(eng *s3Engine) error {
	fs, err := b.newOurs("s3-ingest-fs", nil)
	if err != nil {
		return err
	}
	rep, err := b.newOurs("s3-ingest-s3", nil)
	if err != nil {
		return err
	}
	var onFS, onS3, direct, withCopy samples
	put := func(o *ours, s *samples) error {
		loc, err := startUpload(b.ctx, o.Addr(), "bench/ingest")
		if err != nil {
			return err
		}
		t, err := b.curlPut(withDigest(loc, b.big.Digest), b.big.Path)
		if err != nil {
			return err
		}
		*s = append(*s, mbps(b.big.Size, t))
		return o.Stop()
	}
	for i := range b.runs {
		b.logf("s3 ingest run %d/%d", i+1, b.runs)
		err := orderFor(i, func() error {
			if err := resetStorage(b.ctx, fs); err != nil {
				return err
			}
			if err := put(fs, &onFS); err != nil {
				return err
			}
			prefix := fmt.Sprintf("direct-ingest-%d", i)
			t, err := eng.directPuts(b.ctx, prefix, []string{b.big.Path}, 1)
			if err != nil {
				return err
			}
			direct = append(direct, mbps(b.big.Size, t))
			// What a registry must add on S3: its upload becomes the
			// blob by a copy within the bucket (S3 has no rename).
			c, err := eng.copyObject(b.ctx, prefix+"/0", prefix+"/copy")
			if err != nil {
				return err
			}
			withCopy = append(withCopy, mbps(b.big.Size, t+c))
			return nil
		}, func() error {
			if err := eng.onS3(b.ctx, rep, fmt.Sprintf("ingest-%d", i)); err != nil {
				return err
			}
			return put(rep, &onS3)
		})
		if err != nil {
			return err
		}
	}
	name := fmt.Sprintf("ingest into S3 (SeaweedFS) + redis: %s blob, monolithic PUT", sizeText(b.big.Size))
	rd := onS3.median() / direct.median()
	b.add(row{Name: name, Ours: onS3, Base: direct, BaseName: "the same bytes PUT straight to the bucket (curl --aws-sigv4)", Unit: unitMBps,
		Ratio: rd, RatioText: "of the direct S3 upload", Goal: "≥ 0.8×", Met: boolp(rd >= 0.8)})
	rc := withCopy.median() / direct.median()
	b.add(row{Name: "  floor: the direct upload plus one copy within the bucket", Ours: withCopy, Base: direct, BaseName: "the direct S3 upload", Unit: unitMBps,
		Ratio: rc, RatioText: "of the direct S3 upload", Goal: "report"})
	r := onS3.median() / onFS.median()
	b.add(row{Name: "  that ingest against ours on the filesystem", Ours: onS3, Base: onFS,
		BaseName: "ours on the filesystem", Unit: unitMBps, Ratio: r, RatioText: "S3/filesystem throughput", Goal: "report", Met: nil})
	return nil
}

func (b *bench) s3Push(eng *s3Engine) error {
	vars := map[string]string{"DEPLOY_DIR_IMAGES": b.tree.Root, "CONTAINER_REGISTRY_TAG_STRATEGY": "timestamp latest"}
	fs, err := b.newOurs("s3-push-fs", vars)
	if err != nil {
		return err
	}
	var reps [2]*ours
	for i := range reps {
		if reps[i], err = b.newOurs(fmt.Sprintf("s3-push-replica%d", i), vars); err != nil {
			return err
		}
	}
	halves, err := machineRoots(b.work, b.tree.Root)
	if err != nil {
		return err
	}
	files := make([]string, len(b.tree.Blobs))
	for i, bl := range b.tree.Blobs {
		files[i] = bl.Path
	}
	var onFS, one, two, direct, pullFS, pullS3 []time.Duration
	for i := range b.runs {
		b.logf("s3 push run %d/%d", i+1, b.runs)
		if err := resetStorage(b.ctx, fs); err != nil {
			return err
		}
		r, err := fs.Run(b.ctx, "push")
		if err != nil {
			return err
		}
		onFS = append(onFS, r.Elapsed)
		t, err := b.pullAll(fs.Addr())
		if err != nil {
			return err
		}
		pullFS = append(pullFS, t)
		// The same blobs straight into the bucket, as many at once as
		// push uploads.
		if t, err = eng.directPuts(b.ctx, fmt.Sprintf("direct-push-%d", i), files, 4); err != nil {
			return err
		}
		direct = append(direct, t)
		if err := eng.onS3(b.ctx, reps[0], fmt.Sprintf("push1-%d", i)); err != nil {
			return err
		}
		if r, err = reps[0].Run(b.ctx, "push"); err != nil {
			return err
		}
		if up := uploaded(r.Stdout + r.Stderr); up < b.tree.Bytes {
			return fmt.Errorf("cold push to S3 uploaded %d bytes, want at least %d", up, b.tree.Bytes)
		}
		one = append(one, r.Elapsed)
		if t, err = b.pullAll(reps[0].Addr()); err != nil {
			return err
		}
		pullS3 = append(pullS3, t)
		t, err = b.pushTwoReplicas(eng, reps, halves, fmt.Sprintf("push2-%d", i))
		if err != nil {
			return err
		}
		two = append(two, t)
	}
	for _, o := range append(reps[:], fs) {
		o.env = nil
		if err := o.Stop(); err != nil {
			return err
		}
	}
	tp := func(ds []time.Duration) samples { return throughput(b.tree.Bytes, ds) }
	desc := fmt.Sprintf("%d machines × %d images × %d layers of %s", len(machines), len(b.tree.Names), b.layers, sizeText(b.layerSize))
	rd := tp(one).median() / tp(direct).median()
	b.add(row{Name: "cold push into S3 + redis, 1 replica (" + desc + ")", Ours: tp(one), Base: tp(direct), BaseName: "the same blobs PUT straight to the bucket, 4 at a time (curl --aws-sigv4)",
		Unit: unitMBps, Ratio: rd, RatioText: "of the direct S3 upload", Goal: "≥ 0.8×", Met: boolp(rd >= 0.8)})
	r1 := tp(one).median() / tp(onFS).median()
	b.add(row{Name: "  that push against ours on the filesystem", Ours: tp(one), Base: tp(onFS), BaseName: "ours on the filesystem",
		Unit: unitMBps, Ratio: r1, RatioText: "S3/filesystem throughput", Goal: "report"})
	rp := tp(pullS3).median() / tp(pullFS).median()
	b.add(row{Name: fmt.Sprintf("pull from S3 + redis: skopeo copy --all of the %d images", len(b.tree.Names)), Ours: tp(pullS3), Base: tp(pullFS), BaseName: "ours on the filesystem",
		Unit: unitMBps, Ratio: rp, RatioText: "S3/filesystem throughput", Goal: "report"})
	r2 := tp(two).median() / tp(onFS).median()
	b.add(row{Name: "cold push into S3 + redis, 2 replicas, one machine each at once", Ours: tp(two), Base: tp(onFS), BaseName: "ours on the filesystem",
		Unit: unitMBps, Ratio: r2, RatioText: "S3/filesystem throughput", Goal: "report",
		Note: fmt.Sprintf("two replicas vs one: %.2f×", tp(two).median()/tp(one).median())})
	return nil
}

// pushTwoReplicas points both replicas at a fresh prefix and pushes one
// machine through each at the same time; the time is until both finish.
func (b *bench) pushTwoReplicas(eng *s3Engine, reps [2]*ours, halves [2]string, prefix string) (time.Duration, error) {
	for _, o := range reps {
		if err := eng.onS3(b.ctx, o, prefix); err != nil {
			return 0, err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	start := time.Now()
	for i, o := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = run(b.ctx, append(append([]string{}, o.env...), "DEPLOY_DIR_IMAGES="+halves[i]), o.script, "push")
		}()
	}
	wg.Wait()
	took := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return took, nil
}

// machineRoots makes two deploy roots below work, each holding one
// machine of root (a link).
func machineRoots(work, root string) ([2]string, error) {
	var out [2]string
	for i, m := range machines[:2] {
		out[i] = filepath.Join(work, "deploy-"+m.Name)
		if err := os.MkdirAll(out[i], 0o755); err != nil {
			return out, err
		}
		link := filepath.Join(out[i], m.Name)
		os.Remove(link)
		if err := os.Symlink(filepath.Join(root, m.Name), link); err != nil {
			return out, err
		}
	}
	return out, nil
}
