package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// samples are the repeated measurements of one quantity.
type samples []float64

// median of s (the mean of the middle two for an even count); NaN when
// empty.
func (s samples) median() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	c := append(samples(nil), s...)
	sort.Float64s(c)
	n := len(c)
	if n%2 == 1 {
		return c[n/2]
	}
	return (c[n/2-1] + c[n/2]) / 2
}

func (s samples) min() float64 {
	m := math.Inf(1)
	for _, v := range s {
		m = math.Min(m, v)
	}
	return m
}

func (s samples) max() float64 {
	m := math.Inf(-1)
	for _, v := range s {
		m = math.Max(m, v)
	}
	return m
}

// seconds converts durations to samples in seconds.
func seconds(ds []time.Duration) samples {
	s := make(samples, len(ds))
	for i, d := range ds {
		s[i] = d.Seconds()
	}
	return s
}

// unit formats one kind of value for the table.
type unit int

const (
	unitSeconds unit = iota // shown as ms or s
	unitMBps                // decimal MB/s
	unitMiB                 // memory
	unitKiB                 // memory, small amounts
)

func (u unit) format(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	switch u {
	case unitSeconds:
		if v < 1 {
			return fmt.Sprintf("%.1f ms", v*1000)
		}
		return fmt.Sprintf("%.2f s", v)
	case unitMBps:
		return fmt.Sprintf("%.0f MB/s", v)
	case unitMiB:
		return fmt.Sprintf("%.1f MiB", v)
	case unitKiB:
		return fmt.Sprintf("%.0f KiB", v)
	}
	return fmt.Sprint(v)
}

// spread is "min–max" of s in u, for the notes column.
func (u unit) spread(s samples) string {
	if len(s) < 2 {
		return ""
	}
	return u.format(s.min()) + " – " + u.format(s.max())
}

// row is one line of the results table.
type row struct {
	Name     string
	Ours     samples
	Base     samples // empty when the goal is absolute
	BaseName string
	Unit     unit
	// Ratio is the value compared with the goal, as the goal defines it;
	// NaN when there is none.
	Ratio     float64
	RatioText string // how Ratio is defined, e.g. "ours/base throughput"
	Goal      string
	Met       *bool // nil: reported only
	Note      string
}

func boolp(b bool) *bool { return &b }

func (r row) metText() string {
	switch {
	case r.Met == nil:
		return "(report)"
	case *r.Met:
		return "met"
	}
	return "**MISSED**"
}

func (r row) ratioText() string {
	if math.IsNaN(r.Ratio) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", r.Ratio)
}

// markdownTable renders rows as a Markdown table.
func markdownTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| measurement | ocireg-tool (median) | baseline (median) | ratio | goal | result |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rows {
		base := "–"
		if len(r.Base) > 0 {
			base = r.Unit.format(r.Base.median()) + " (" + r.BaseName + ")"
		}
		ours := "–"
		if len(r.Ours) > 0 {
			ours = r.Unit.format(r.Ours.median())
		}
		ratio := r.ratioText()
		if r.RatioText != "" && ratio != "–" {
			ratio += " " + r.RatioText
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", esc(r.Name), ours, esc(base), esc(ratio), esc(r.Goal), r.metText())
	}
}

// textTable renders rows for a terminal.
func textTable(w io.Writer, rows []row) {
	headers := []string{"measurement", "ours", "baseline", "ratio", "goal", "result"}
	var cells [][]string
	for _, r := range rows {
		base := "-"
		if len(r.Base) > 0 {
			base = r.Unit.format(r.Base.median()) + " (" + r.BaseName + ")"
		}
		ours := "-"
		if len(r.Ours) > 0 {
			ours = r.Unit.format(r.Ours.median())
		}
		cells = append(cells, []string{r.Name, ours, base, r.ratioText(), r.Goal, strings.Trim(r.metText(), "*")})
	}
	width := make([]int, len(headers))
	for i, h := range headers {
		width[i] = len([]rune(h))
	}
	for _, c := range cells {
		for i, s := range c {
			width[i] = max(width[i], len([]rune(s)))
		}
	}
	line := func(c []string) {
		for i, s := range c {
			fmt.Fprintf(w, "%s%s  ", s, strings.Repeat(" ", width[i]-len([]rune(s))))
		}
		fmt.Fprintln(w)
	}
	line(headers)
	for _, c := range cells {
		line(c)
	}
}

func esc(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// report is the text of BENCHMARKS.md.
func (b *bench) report() string {
	var w strings.Builder
	fmt.Fprintln(&w, "# ocireg-tool benchmarks")
	fmt.Fprintln(&w)
	fmt.Fprintln(&w, "Written by `make bench` (`go run ./tests/bench`); do not edit by hand, rerun it.")
	fmt.Fprintln(&w, "Every value is the median of the runs noted below; every ratio compares")
	fmt.Fprintln(&w, "with a baseline measured in the same run, on the same machine, over")
	fmt.Fprintln(&w, "127.0.0.1, with both servers on the same filesystem.")
	fmt.Fprintln(&w)
	fmt.Fprintln(&w, "## Machine")
	fmt.Fprintln(&w)
	for _, l := range b.machineInfo() {
		fmt.Fprintf(&w, "- %s\n", l)
	}
	fmt.Fprintln(&w)
	fmt.Fprintln(&w, "## Results")
	fmt.Fprintln(&w)
	markdownTable(&w, b.rows)
	fmt.Fprintln(&w)
	met, missed := 0, 0
	var missedNames []string
	for _, r := range b.rows {
		if r.Met == nil {
			continue
		}
		if *r.Met {
			met++
		} else {
			missed++
			missedNames = append(missedNames, r.Name)
		}
	}
	fmt.Fprintf(&w, "Goals: %d met, %d missed", met, missed)
	if missed > 0 {
		fmt.Fprintf(&w, " (%s)", strings.Join(missedNames, "; "))
	}
	fmt.Fprintln(&w, ".")
	fmt.Fprintln(&w)
	fmt.Fprintln(&w, "### Spread (min – max of the runs)")
	fmt.Fprintln(&w)
	fmt.Fprintln(&w, "| measurement | runs | ocireg-tool | baseline |")
	fmt.Fprintln(&w, "|---|---|---|---|")
	for _, r := range b.rows {
		fmt.Fprintf(&w, "| %s | %d | %s | %s |\n", esc(strings.TrimSpace(r.Name)), len(r.Ours), r.Unit.spread(r.Ours), r.Unit.spread(r.Base))
	}
	fmt.Fprintln(&w)
	fmt.Fprintln(&w, "## Method")
	fmt.Fprintln(&w)
	for _, m := range append(methodNotes(b), scaleMethodNotes...) {
		fmt.Fprintf(&w, "- %s\n", m)
	}
	fmt.Fprintln(&w)
	fmt.Fprintln(&w, "## Notes")
	fmt.Fprintln(&w)
	for _, n := range append(b.notes, analysisNotes...) {
		fmt.Fprintf(&w, "- %s\n", n)
	}
	return w.String()
}

// methodNotes says exactly what each row measures.
func methodNotes(b *bench) []string {
	return []string{
		fmt.Sprintf("Sizes: ingest blob and memory layer %s of random bytes; push tree %d machines × %d images × %d layers of %s (gzip with stored blocks over random data: incompressible, %s of blobs in all); gc store from %d machines × %d images × 20 layers of 4 KiB.",
			sizeText(b.big.Size), len(machines), treeLen(b.tree), b.layers, sizeText(b.layerSize), treeBytes(b.tree), len(machines), treeLen(b.gcTree)),
		"Servers: ours is `container-registry.sh start` on the generated registry-config.yml (listen address narrowed to 127.0.0.1); the baseline is Debian's `docker-registry serve` on an equivalent file (filesystem storage in the same temporary directory, delete enabled, in-memory blob descriptor cache, info log with access log, storage health check). Storage is emptied and the server restarted before every ingest and push run.",
		"ingest: POST an upload session, then time one `curl -T` monolithic PUT with `?digest=` (Expect: 100-continue off). Server peak RSS is VmHWM of the server process after the PUT.",
		"cold push: `container-registry.sh push` (strategy `timestamp latest`: one OCI index per tag merging both machines) into an empty registry, the whole command timed. Ceiling (a): the same layer and config blobs as raw uploads with curl, one process starting every session and one process doing every monolithic PUT, 4 in parallel (push's parallelism). Shell method (b): one `skopeo copy oci:… docker://…:<timestamp>-<arch>` per image build, then per image and tag one `curl -I` per architecture and one `curl -X PUT` of the index; the index JSON is built in the bench process, where the original spawned python3, so (b) is if anything flattered.",
		"re-push: `container-registry.sh push` again with nothing changed (the run fails unless its summary says 0 bytes were uploaded), against the cold push and against re-running only the skopeo copies of (b) on the populated registry.",
		"start-to-ready: the whole `container-registry.sh start` command (shell wrapper, configuration checks, launching `serve` detached, waiting for /v2/) against launching `docker-registry serve` from the bench process and polling /v2/ every 5 ms. Twice as many runs (at least 10). One process start: `ocireg-tool version` and `docker-registry --version` run from the bench, alternately, as many runs (start makes two process starts, docker-registry's launch one). Idle RSS is VmRSS 2 s after start, split into RssFile (the pages of the binary mapped) and RssAnon from /proc/<pid>/status.",
		"pull: `skopeo copy --all docker://…:latest oci:…` of every image of the pushed tree, from our server and from docker-registry serving a copy of our storage directory.",
		"memory: peak RSS (`/usr/bin/time -f %M`, which forks and execs the script, which execs the tool; wait4 rusage from the bench process itself would include the bench's own peak, since os/exec shares its memory until the exec) of `container-registry.sh push <layout>` for a layout with one image whose only layer is the ingest blob.",
		"generate: `ocireg-tool generate --env-dump` in secure mode on a fresh storage directory (writes the script, the tool copy, the configuration, CA and server certificate), timed with hyperfine (`--prepare` removes the storage; twice as many runs, at least 10).",
		"transfer: the push tree pushed to our server with one 16 KiB artifact per platform manifest as its referrer; `container-registry.sh promote <every image> --to <docker-registry>/prod --dest-insecure` (the whole command) into an emptied docker-registry, against one `skopeo copy --all` per image into the same (skopeo leaves the referrers behind); then the same promote again (nothing to send). export: `container-registry.sh export <every image> --output FILE` against one `skopeo copy --all docker://… oci-archive:…` per image.",
		"ui: the registry browser's Go benchmarks (`go test -bench ./tasks/ui`): the index page served for 1,000 repositories × 20 tags (single-platform images put through distribution's storage API on in-memory storage, 250 repositories per page, every repository filtered and counted), the same 1,000 rendered into one page, and the first page with an empty cache; ns/op of each `-count` run.",
		"gc: the gc tree is pushed (strategy `latest`), half of its images deleted with `container-registry.sh delete`, the registry stopped and its storage copied; each run restores a fresh copy (blob files hard-linked, everything else copied) for each side. Ours: the registry is started on the copy (not timed), then `container-registry.sh gc --yes` is timed with it running: gc is online (the registry holds pushes while it sweeps; pulls go on) and the registry is still serving when it ends. The baseline is `docker-registry garbage-collect <config>` on its copy, offline as it must be (no server on that storage; output discarded).",
		"gcpull: on the gc store with our registry running, 2 goroutines pull the live images (go-containerregistry `remote.Image` of `latest` for amd64, config and every layer read, digests checked) in a loop; per pull the latency. Each run: the store restored and the registry started, a fixed number of pulls without gc, then the pulls go on during one `gc --yes` after another, each on the store restored again with the pullers stopped meanwhile, until as many were made during gc. The row compares the per-run p99 during gc with the per-run p99 without (medians over the runs); any failed pull misses the goal.",
		"growth: 30 builds of 2 images × 2 machines (3 layers of 128 KiB, the first the same in every build, the other two and so config, manifests and index new in each), each written to the deploy tree and pushed with `container-registry.sh push` (default strategy `timestamp latest`, every build's pushes in a second of their own) into two registries side by side: one with CONTAINER_REGISTRY_RETENTION_KEEP=5 and CONTAINER_REGISTRY_RETENTION_ON_PUSH=1 (every push prunes the pushed images and sweeps), one without a policy. Storage is the apparent size of every file below data/ after the last push; one run (it is deterministic apart from a few bytes of records).",
		"sign: the push tree pushed into an empty registry and again unchanged, with CONTAINER_REGISTRY_SIGN=1 (every index and platform manifest signed with the generated key: the encrypted key decrypted once per push, scrypt as cosign does, then per manifest a signature tag written) and with CONTAINER_REGISTRY_SIGN=0, alternately on one registry, the whole `container-registry.sh push` timed. A signed re-push must sign nothing (the signatures in place are checked with the public key, the private key is not decrypted) and upload 0 bytes.",
		"s3: SeaweedFS (`weed server`: master, volume, filer and S3 in one process, credentials required; built by `make deps`) and redis-server on loopback, on the same machine. The baseline is ours on the filesystem, run alternately in the same run. ingest as above into a replica on a fresh bucket prefix (each prefix with a redis database of its own). cold push: the whole push tree through one replica; then two replicas on one fresh prefix, each pushing one machine's builds at the same time (the index merges of both under the redis lock), timed until both finish. Direct S3 baseline: the same bytes PUT straight into the bucket with `curl --aws-sigv4` (keys in a curl config file; one signed PUT per blob, the ingest blob alone, the push tree's blobs 4 at a time as push uploads them), in the same run; its floor row adds one CopyObject of the uploaded object within the bucket (curl, x-amz-copy-source), the copy every registry on S3 makes when an upload becomes its blob. pull: `skopeo copy --all` of every image of the push tree, from the S3 replica just pushed to and from ours on the filesystem.",
		fmt.Sprintf("listing: %s repositories of %d tags each (every tag its own single-platform image: one 512-byte layer, the manifests differing by an annotation), pushed with go-containerregistry 8 repositories at a time. Each run, for each command: the registry restarted (not timed), the command timed (cold), then again (warm). `list --json`, `catalog` and `tags <image> --json` are the whole helper-script command; the baseline is go-containerregistry in the bench process, `remote.Catalog` then `remote.List` of each repository one after another (what a Go client of the registry would write), alternating with `list` which goes first; the index page is a GET of /ui/ read to the end. Every `list --json` output is checked to hold every repository and tag.", thousands(listingRepos), listingTags),
	}
}

func treeLen(t *tree) int {
	if t == nil {
		return 0
	}
	return len(t.Names)
}

func treeBytes(t *tree) string {
	if t == nil {
		return "0 B"
	}
	return sizeText(t.Bytes)
}

// analysisNotes explain results that depend on code outside the bench
// (from profiling while the harness was written; see the commit log).
var analysisNotes = []string{
	"The machine is shared: the load average above says how busy it was. Both sides of every ratio run interleaved (the order alternates every run), so steady load affects them alike; absolute times are not comparable between runs.",
	"Fixed after profiling: (1) push no longer rewrites a tag that already holds the same index; (2) push skips the 150 ms settle re-check for the registry served from its own storage, where every push holds push.lock around the index read-modify-write (remote registries keep the re-check); (3) push sets up one authenticated client per repository (it pinged the registry once per manifest) and asks for all blobs of a manifest in parallel; (4) `start` probes /v2/ every 5 ms; (5) the helper script finds itself with parameter expansion instead of spawning dirname and basename; (6) `gc --yes` carries out its recorded dry run, one mark-and-sweep instead of three (it then stopped the registry first; it is online now, see the gc rows). On the loaded machine re-push went from ~450 ms to ~65 ms and gc from 2.86x to about 1.9x of docker-registry.",
	"cold push: the images of a push go up together (8 in flight), and their blob requests share one budget of 4, as the ceiling keeps 4 PUTs in flight; a new blob costs a POST (which asks to mount it from its own repository: 201 when the registry has it) and one monolithic PUT, where go-containerregistry's upload after our own HEAD was HEAD, POST, PATCH, PUT; a blob another image of the push put is mounted, not sent again; the registry is pinged once per push (it was pinged by the pusher, the puller and our client for every repository). Before: 0.78x of the ceiling (0.74x in the issue), images one after another.",
	"re-push: a manifest the repository holds costs one HEAD (its blobs are there: the registry checked them when it was put), each tag one GET of its index, each new timestamp tag one PUT; push.lock locks each tag on its own (a byte-range lock per tag under a shared flock), so the images' tag writes no longer wait for each other. What remains per run is one process start (~10 ms of package init alone by GODEBUG=inittrace, the start-up issue's) and, per image, the new timestamp tag's index PUT, which distribution's filesystem driver writes as files it fsyncs with their directories (~4 ms each with curl on this disk). The >= 20x goal against skopeo re-copying means finishing the whole process in 1/20 of 8 skopeo runs, about 10 ms on a quiet machine: below one process start plus those PUTs, so it is not reachable as measured.",
	"scale and small: the registry is the floor. The curl ceiling of 100 images sends 2,000 requests, 1,800 of them writes that distribution's filesystem driver fsyncs (a POST writes the session's start time, a PUT the blob and its links, a manifest or index PUT the manifest and its links), at ~15 ms each at 4 in flight on this disk; push sends those same writes (one ping, a manifest HEAD and an index GET per image besides), so its cold push per image is what the registry's writes cost and stays there from 100 to 1,000 images, and the re-push per image falls from 10 to 1,000 images as the process start spreads over more images. Peak RSS is the parsed layouts of every image (discovery reads them all before the push starts) on top of the ~30 MiB of the process.",
	"start-to-ready: two Go process starts (`start`, then the detached `serve`) against one launch of docker-registry straight from the bench. One process start of our binary alone costs more than 1.2x of one of docker-registry's (the row 'one process start', same run), and start needs two where docker-registry's launch is one: exec, runtime and package initialisation of a 35 MiB binary (distribution v3 with its s3 driver and the AWS SDK's endpoint tables, go-containerregistry, OpenTelemetry/gRPC pulled in by distribution, the browser's templates) cost about as much as docker-registry's whole launch, so <= 1.2x is below the floor as measured (the floor is roughly one process start of ours plus docker-registry's launch); with `GODEBUG=inittrace=1` package init is ~8 ms of CPU, the largest the AWS SDK's endpoints (2.2 MB allocated) and protobuf's detrand, both linked by distribution and not avoidable without dropping its s3 driver. What start adds on top (configuration checks, secrets, the port check, the pid file, one /v2/ probe) is a few ms.",
	"idle RSS: most of the process is its binary's pages. Built with the default text address (on a 2 MiB boundary), a binary the kernel caches in large folios (ext4 on 6.x, as here, for a freshly written file) was mapped in whole 2 MiB pages: 35 MiB of the binary resident and 44 MiB idle. `make build` now starts the text 4 KiB past the boundary (`-T 0x402000`, amd64), so only the pages used are mapped (~23 MiB), and `serve` returns its start-up garbage once listening (debug.FreeOSMemory): ~31 MiB idle. The rest of the gap to docker-registry is the binary's size (35 MiB against 20 MiB; see the split in the notes) and ~2 MiB more heap (the AWS SDK's endpoint tables, ~2.2 MB live from package init whether S3 is configured or not).",
	"s3: every registry on S3 writes an upload under _uploads and then copies it to its blob path (S3 has no rename) and deletes it, so it moves the bytes into the engine twice where the direct upload moves them once; the floor row (direct upload plus one copy) is the best a registry on distribution's driver can reach, and it is below 0.8x when the engine copies at less than 4x its write speed, as SeaweedFS does. The driver's settings were tried on a 256 MiB ingest against SeaweedFS (one run each, loaded machine): default 10 MiB parts with 32 MiB multipart copy 7.8-9.4 s; 32 or 64 MiB parts 9.8 / 12.8 s with a single CopyObject; a single CopyObject 16.6 s; 8 / 16 MiB copy parts 12.1 / 9.7 s; and in this harness (128 MiB ingest and the push tree, one run each) a multipart copy of every blob in 8 MiB parts (the push tree's 16 MiB layers are otherwise one CopyObject each) took the ingest from 0.70x to 0.24x and the push from 0.59x to 0.49x of the direct upload. None did better than distribution's defaults, which the generated configuration now states (tasks/regconfig).",
	"listing: `list` asks for the tag lists of 8 repositories at once (it went one after another, as the go-containerregistry baseline does) through one transport set up with one /v2/ ping (go-containerregistry's remote.List pings once per repository, so the baseline makes two requests per repository where `list` makes one). On 2 cores the server and the client share the CPU, so the parallelism alone gained little (0.84x-0.94x of the baseline in a run before the shared transport).",
	"gc: with runtime/pprof ~70% of the CPU is distribution v3's storage Walk/List; v3's mark phase also enumerates every repository's layer links, which 2.8 does not, and ours records the size of everything it removes to report the bytes freed. What remains is distribution's.",
	"memory: push streams each layer from the layout file to the registry (never buffered whole); the peak RSS is the Go runtime, the HTTP transport's buffers and the parsed layouts.",
}
