package tests

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
)

// uiScript is a label value a page must show as text, never run.
const uiScript = `1.2.3<script>alert("label")</script>`

// shotDir is where the browser tests leave a screenshot of every page
// (CI keeps them; look at them after a change to the pages).
var shotDir = filepath.Join("..", "build", "ui-screenshots")

// newBrowser starts headless Debian chromium (as root here: no sandbox)
// for the test and returns its first tab.
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	bin := testtool.Need(t, "chromium")
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	}, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	// A label that ran as script would open a dialog.
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			t.Errorf("the page ran script: dialog %q", e.Message)
		}
	})
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// shot saves a full-page screenshot as build/ui-screenshots/name.png.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(shotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shotDir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// uiRegistry starts a registry holding the two-machine sample tree, with
// a `<script>` version label on the x86-64 app-server build, pushed.
func uiRegistry(t *testing.T, vars map[string]string) *Env {
	t.Helper()
	deploy := filepath.Join(t.TempDir(), "deploy")
	if r := RunTool(t, nil, "sample-deploy", "--dest", deploy); r.Code != 0 {
		t.Fatalf("sample-deploy: %s", r.Out())
	}
	layout, err := filepath.Glob(filepath.Join(deploy, "qemux86-64", "app-server-*-oci"))
	if err != nil || len(layout) == 0 {
		t.Fatalf("no app-server layout in %s", deploy)
	}
	lv := map[string]string{"PV": uiScript, "OCI_IMAGE_REVISION": "8a3f2b1", "OCI_IMAGE_BRANCH": "main",
		"OCI_IMAGE_BUILD_DATE": "2026-01-08T12:34:56Z"}
	if r := RunTool(t, lv, "labels", "--apply", layout[0]); r.Code != 0 {
		t.Fatalf("labels --apply: %s", r.Out())
	}
	all := map[string]string{"DEPLOY_DIR_IMAGES": deploy}
	for k, v := range vars {
		all[k] = v
	}
	e := NewEnv(t, all)
	for _, cmd := range [][]string{{"start"}, {"push"}} {
		if r := e.Run(cmd...); r.Code != 0 {
			t.Fatalf("%s: %s", cmd[0], r.Out())
		}
	}
	return e
}

// js evaluates expr in the page.
func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// TestUIBrowser loads every page type in chromium against a registry
// holding the sample tree and checks what a person sees.
func TestUIBrowser(t *testing.T) {
	e := uiRegistry(t, nil)
	base := "http://" + e.URL
	_, port, _ := strings.Cut(e.URL, ":")
	ctx := newBrowser(t)

	// "/" leads to the index: every image, its tags, platforms.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible("section.repo")); err != nil {
		t.Fatal(err)
	}
	url := js[string](t, ctx, `document.location.toString()`)
	if url != base+"/ui/" {
		t.Errorf("/ led to %s, want %s/ui/", url, base)
	}
	repos := js[[]string](t, ctx, `[...document.querySelectorAll("section.repo h2")].map(h => h.textContent)`)
	if strings.Join(repos, " ") != "yocto/app-server yocto/container-base" {
		t.Errorf("index lists %q", repos)
	}
	rows := js[[]string](t, ctx, `[...document.querySelectorAll("section.repo tbody tr")].map(r => r.innerText.replace(/\s+/g, " "))`)
	if len(rows) != 4 {
		t.Errorf("want 4 tag rows (2 images x latest and a timestamp), got %q", rows)
	}
	for _, r := range rows {
		if !strings.Contains(r, "amd64, arm64") || !strings.Contains(r, "KiB") {
			t.Errorf("tag row %q: want both platforms and a size", r)
		}
	}
	shot(t, ctx, "index")

	// The filter works in the page.
	if err := chromedp.Do(ctx, chromedp.SendKeys("#filter", "container-base")); err != nil {
		t.Fatal(err)
	}
	hidden := js[[]bool](t, ctx, `[...document.querySelectorAll("section.repo")].map(s => s.hidden)`)
	if fmt.Sprint(hidden) != "[true false]" {
		t.Errorf("after filtering for container-base, hidden = %v, want [true false]", hidden)
	}
	if c := js[string](t, ctx, `document.getElementById("count").textContent`); c != "1 of 2 images" {
		t.Errorf("count after filtering: %q", c)
	}
	shot(t, ctx, "index-filtered")

	checkImagePage(t, ctx, base, port)
	checkCopyButton(t, ctx, base, port)

	// The registry page, with the last gc as it recorded itself.
	for _, cmd := range [][]string{{"gc", "--yes"}} {
		if r := e.Run(cmd...); r.Code != 0 {
			t.Fatalf("%v: %s", cmd, r.Out())
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/-/registry"), chromedp.WaitVisible("#registry")); err != nil {
		t.Fatal(err)
	}
	reg := js[string](t, ctx, `document.querySelector("main").innerText`)
	for _, want := range []string{"insecure (HTTP)", "2 (4 tags)", "10.0.2.2:" + port, "filesystem storage", e.Storage,
		"Last gc\t20", "nothing to collect", "container-registry.sh gc"} {
		if !strings.Contains(reg, want) {
			t.Errorf("registry page lacks %q:\n%s", want, reg)
		}
	}
	shot(t, ctx, "registry")

	// A push shows up on the next load (the cache hears of it).
	if r := e.Run("push", "app-server", "--tag", "v9"); r.Code != 0 {
		t.Fatalf("push --tag v9: %s", r.Out())
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible("section.repo")); err != nil {
		t.Fatal(err)
	}
	tags := js[[]string](t, ctx, `[...document.querySelectorAll("section.repo td.tag")].map(td => td.textContent)`)
	if !strings.Contains(strings.Join(tags, " "), "v9") {
		t.Errorf("after push --tag v9 the index shows tags %q", tags)
	}
	readmeShot(t, ctx, base)
	checkPhoneAndDark(t, ctx, base)
}

// readmeShot saves the top of the image page in a laptop-sized window as
// build/ui-screenshots/readme.png: the README shows it as docs/ui.png.
func readmeShot(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	err := chromedp.Do(ctx, chromedp.EmulateViewport(1000, 640),
		chromedp.Navigate(base+"/ui/yocto/app-server:latest"), chromedp.WaitVisible("section.platform"))
	if err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shotDir, "readme.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkImagePage checks the image page of the multi-arch app-server.
func checkImagePage(t *testing.T, ctx context.Context, base, port string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/yocto/app-server:latest"), chromedp.WaitVisible("section.platform")); err != nil {
		t.Fatal(err)
	}
	plats := js[[]string](t, ctx, `[...document.querySelectorAll("section.platform")].map(s => s.dataset.platform)`)
	if fmt.Sprint(plats) != "[linux/amd64 linux/arm64]" {
		t.Errorf("platforms %q", plats)
	}
	build := js[string](t, ctx, `document.getElementById("build").innerText`)
	for _, want := range []string{"org.opencontainers.image.revision\t8a3f2b1", "org.opencontainers.image.ref.name\tmain", "org.opencontainers.image.version\t" + uiScript} {
		if !strings.Contains(build, want) {
			t.Errorf("build labels lack %q:\n%s", want, build)
		}
	}
	if n := js[int](t, ctx, `document.querySelectorAll("main script").length`); n != 0 {
		t.Errorf("the label became %d script element(s)", n)
	}
	pulls := js[string](t, ctx, `document.querySelector("table.pull").innerText`)
	for _, want := range []string{"podman pull 10.0.2.2:" + port + "/yocto/app-server:latest", "docker pull 10.0.2.2:" + port + "/yocto/app-server:latest",
		"podman pull --tls-verify=false localhost:" + port + "/yocto/app-server:latest"} {
		if !strings.Contains(pulls, want) {
			t.Errorf("pull commands lack %q:\n%s", want, pulls)
		}
	}
	other := js[string](t, ctx, `document.getElementById("othertags").innerText`)
	if !strings.HasPrefix(strings.TrimSpace(other), "20") {
		t.Errorf("other tags of latest: %q, want the timestamp tag", other)
	}
	layers := js[int](t, ctx, `document.querySelectorAll("section.platform table.layers tbody tr").length`)
	if layers != 6 {
		t.Errorf("%d layer rows, want 2 platforms x (config + 2 layers)", layers)
	}
	checkArtifacts(t, ctx, base)
	shot(t, ctx, "image")
}

// checkArtifacts: the image page lists the build documents push attached
// (SBOM, CVE-check SBOM, package list of each platform) and links each to
// the document, viewed as JSON or text, or downloaded under its file name.
func checkArtifacts(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	rows := js[int](t, ctx, `document.querySelectorAll("#artifacts tbody tr").length`)
	text := js[string](t, ctx, `document.getElementById("artifacts").innerText`)
	if rows != 6 || !strings.Contains(text, "application/spdx+json") || !strings.Contains(text, ".spdx.json") || !strings.Contains(text, ".manifest") {
		t.Fatalf("artifacts section: %d rows, want 2 platforms x 3 documents:\n%s", rows, text)
	}
	href := js[string](t, ctx, `[...document.querySelectorAll("#artifacts tbody tr")].find(r => r.innerText.includes("application/spdx+json")).querySelector("a").getAttribute("href")`)
	resp, err := http.Get(base + href)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	var doc map[string]any
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(body), &doc) != nil || doc["@context"] == nil {
		t.Errorf("view %s: %d %s, not the SPDX document:\n%.200s", href, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, err = http.Get(base + href + "?download=1")
	if err != nil {
		t.Fatal(err)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || !strings.Contains(cd, ".spdx.json") || readAll(t, resp) != body {
		t.Errorf("download %s: Content-Disposition %q", href, cd)
	}
	manifest := js[string](t, ctx, `[...document.querySelectorAll("#artifacts tbody tr")].find(r => r.innerText.includes(".manifest")).querySelector("a").getAttribute("href")`)
	if resp, err = http.Get(base + manifest); err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || !strings.Contains(body, "busybox") {
		t.Errorf("package list %s: %s\n%s", manifest, resp.Header.Get("Content-Type"), body)
	}
	// Only a stored artifact with a subject and one file is served: not
	// an image (the platform manifest), nothing unknown.
	platform := js[string](t, ctx, `document.querySelector("section.platform code").innerText`)
	if !strings.HasPrefix(platform, "sha256:") {
		t.Fatalf("the first platform's digest on the page: %q", platform)
	}
	for _, bad := range []string{"yocto/app-server@" + platform, "yocto/app-server@sha256:" + strings.Repeat("0", 64), "yocto/app-server", "Bad@x"} {
		resp, err := http.Get(base + "/ui/-/artifact/" + bad)
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); resp.StatusCode != http.StatusNotFound {
			t.Errorf("/ui/-/artifact/%s: %d, want 404\n%.200s", bad, resp.StatusCode, body)
		}
	}
}

// checkCopyButton clicks the copy button of the target's podman command
// and reads the clipboard.
func checkCopyButton(t *testing.T, ctx context.Context, base, port string) {
	t.Helper()
	want := "podman pull 10.0.2.2:" + port + "/yocto/app-server:latest"
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		_, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: base})
		if err != nil {
			t.Fatalf("granting %s: %v", name, err)
		}
	}
	sel := fmt.Sprintf(`button.copy[data-copy=%q]`, want)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		t.Fatalf("clicking copy: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[string](`document.querySelector('`+sel+`').dataset.copied`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("copy button never copied: %v", err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("reading the clipboard: %v", err)
	}
	if got != want {
		t.Errorf("clipboard after copy: %q, want %q", got, want)
	}
}

// checkPhoneAndDark screenshots the image page on a phone-sized screen
// in dark mode.
func checkPhoneAndDark(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
	if err == nil {
		err = chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)),
			chromedp.Navigate(base+"/ui/yocto/app-server:latest"), chromedp.WaitVisible("section.platform"))
	}
	if err != nil {
		t.Fatal(err)
	}
	bg := js[string](t, ctx, `getComputedStyle(document.body).backgroundColor`)
	if bg != "rgb(21, 24, 27)" {
		t.Errorf("dark mode background %s", bg)
	}
	if w := js[int](t, ctx, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the image page is %d px wide on a 390 px phone", w)
	}
	shot(t, ctx, "image-phone-dark")
}

// TestUIWithoutJavaScript checks what the server alone does: the filter
// through the server, the security headers, CONTAINER_REGISTRY_UI=0.
func TestUIWithoutJavaScript(t *testing.T) {
	e := uiRegistry(t, nil)
	base := "http://" + e.URL
	resp, err := http.Get(base + "/ui/?q=container-base")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, "yocto/container-base") || strings.Contains(body, "yocto/app-server") {
		t.Errorf("server filter for container-base: status %d\n%s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if r, err := http.Post(base+"/ui/", "text/plain", nil); err != nil || r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: %v %v, want 405", r.StatusCode, err)
	}

	// A deleted tag is gone from the pages at once.
	if r := e.Run("delete", "yocto/app-server:latest"); r.Code != 0 {
		t.Fatalf("delete: %s", r.Out())
	}
	if resp, err = http.Get(base + "/ui/yocto/app-server:latest"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("image page of a deleted tag: %v %v, want 404", resp.StatusCode, err)
	}
	resp, err = http.Get(base + "/ui/?q=app-server")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); strings.Contains(body, "app-server:latest") || !strings.Contains(body, "yocto/app-server") {
		t.Errorf("index after deleting app-server:latest:\n%s", body)
	}
	if r := e.Run("stop"); r.Code != 0 {
		t.Fatal(r.Out())
	}
	if r := e.RunEnv(map[string]string{"CONTAINER_REGISTRY_UI": "0"}, "start"); r.Code != 0 || strings.Contains(r.Out(), "/ui/") {
		t.Fatalf("start with CONTAINER_REGISTRY_UI=0 (%d):\n%s", r.Code, r.Out())
	}
	for _, p := range []string{"/", "/ui/"} {
		resp, err := http.Get(base + p)
		if err != nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s with the UI off: %v %v, want 404", p, resp.StatusCode, err)
		}
	}
	if resp, err := http.Get(base + "/v2/"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/v2/ with the UI off: %v %v", resp.StatusCode, err)
	}
}

// TestUISecureLogin: in secure mode the pages sit behind the registry's
// htpasswd auth; the browser gets the basic-auth prompt.
func TestUISecureLogin(t *testing.T) {
	e := uiRegistry(t, map[string]string{"CONTAINER_REGISTRY_SECURE": "1"})
	base := "https://" + e.URL
	ca, err := os.ReadFile(filepath.Join(e.Storage, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pw, err := os.ReadFile(filepath.Join(e.Storage, "auth", "password"))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: newPool(t, ca)}}}
	resp, err := client.Get(base + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("/ui/ without credentials: %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	req, _ := http.NewRequest("GET", base+"/ui/", nil)
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("yocto:"+strings.TrimSpace(string(pw)))))
	if resp, err = client.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/ui/ with credentials: %v %v", resp.StatusCode, err)
	}
	readAll(t, resp)

	// In the browser: the prompt, cancelled, then answered.
	ctx := newBrowser(t, chromedp.Flag("ignore-certificate-errors", true))
	var answer atomic.Value
	answer.Store(fetch.AuthChallengeResponseResponseCancelAuth)
	var prompts atomic.Int32
	err = chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *fetch.EventAuthRequired:
			prompts.Add(1)
			r := &fetch.AuthChallengeResponse{Response: answer.Load().(fetch.AuthChallengeResponseResponse)}
			if r.Response == fetch.AuthChallengeResponseResponseProvideCredentials {
				r.Username, r.Password = "yocto", strings.TrimSpace(string(pw))
			}
			go chromedp.Call(ctx, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: e.RequestID, AuthChallengeResponse: r})
		case *fetch.EventRequestPaused:
			go chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{HandleAuthRequests: &yes}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/")); err != nil {
		t.Fatal(err)
	}
	text := js[string](t, ctx, `document.body.innerText`)
	if prompts.Load() == 0 || !strings.Contains(text, "authentication required") {
		t.Errorf("without credentials: %d prompts, page %q", prompts.Load(), text)
	}
	shot(t, ctx, "secure-cancelled")
	answer.Store(fetch.AuthChallengeResponseResponseProvideCredentials)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/yocto/container-base:latest"), chromedp.WaitVisible("section.platform")); err != nil {
		t.Fatal(err)
	}
	text = js[string](t, ctx, `document.querySelector("table.pull").innerText`)
	if !strings.Contains(text, "--creds yocto") || !strings.Contains(text, "--cert-dir "+filepath.Join(e.Storage, "pki")) {
		t.Errorf("secure pull commands:\n%s", text)
	}
	shot(t, ctx, "secure-image")
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
