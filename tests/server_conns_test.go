package tests

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ocireg-tool/ocireg-tool/tasks/serve"
)

// serverPeers returns the remote ports of the TCP connections (not
// listeners) process pid holds, from its descriptors and /proc/net/tcp{,6}.
func serverPeers(t *testing.T, pid int) map[int]bool {
	t.Helper()
	peer := map[string]int{}
	for _, so := range procSockets() {
		if !so.Listening {
			peer[so.Link] = so.RemotePort
		}
	}
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	out := map[int]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if p, ok := peer[link]; err == nil && ok {
			out[p] = true
		}
	}
	return out
}

// localPort is the client-side port of c.
func localPort(c net.Conn) int { return c.LocalAddr().(*net.TCPAddr).Port }

// closedByPeer reads c until the server closes it (EOF or reset); it fails
// after timeout.
func closedByPeer(t *testing.T, what string, c net.Conn, timeout time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(timeout))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%s: still open after %s", what, timeout)
	}
}

// request writes a raw HTTP/1.1 request head to c.
func request(t *testing.T, c net.Conn, method, uri, host string, length int64) {
	t.Helper()
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\n", method, uri, host)
	if length >= 0 {
		head += fmt.Sprintf("Content-Type: application/octet-stream\r\nContent-Length: %d\r\n", length)
	}
	if _, err := io.WriteString(c, head+"\r\n"); err != nil {
		t.Fatal(err)
	}
}

// startUpload opens a blob upload in repo and returns its request URI.
func startUpload(t *testing.T, e *Env, repo string) string {
	t.Helper()
	resp, err := http.Post("http://"+e.URL+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusAccepted || err != nil {
		t.Fatalf("starting an upload: %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
	return loc.RequestURI()
}

// The server lets go of connections that hold it without progress, and
// only of those. With the timeouts shortened (idle 1s, headers 1s, no
// progress 2s): 100 keep-alive connections left idle after a request, 100
// that never send a byte, an upload that stops sending and a download
// whose client stops reading are all closed, and the server holds no other
// connection afterwards; an upload and a download that make progress for
// three times the stall timeout go on.
func TestServerClosesIdleConnections(t *testing.T) {
	const idle, silent = 100, 100
	e := NewEnv(t, nil)
	e.Extra[serve.TimeoutsEnv] = "idle=1s,header=1s,stall=2s"
	e.mustRun(t, 0, "start")
	pid := e.pidOf(t)
	big := srvRandomImage(t, 32<<20, 1)
	srvPush(t, e, "yocto/big:v1", big)
	layers, _ := big.Layers()
	blob, _ := layers[0].Digest()
	host := e.URL
	addr := "127.0.0.1:" + e.Port
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	// Progress keeps a connection however long it takes: 64 KiB a second
	// up, 2 MiB a second down, for three times the stall timeout.
	slowUp := dial()
	request(t, slowUp, "PATCH", startUpload(t, e, "yocto/slow"), host, 6*64<<10)
	slowDown := dial()
	request(t, slowDown, "GET", "/v2/yocto/big/blobs/"+blob.String(), host, -1)
	upDone, downDone := make(chan error, 1), make(chan error, 1)
	go func() {
		chunk := make([]byte, 64<<10)
		for i := 0; i < 6; i++ {
			if _, err := slowUp.Write(chunk); err != nil {
				upDone <- fmt.Errorf("slow upload, chunk %d: %w", i, err)
				return
			}
			time.Sleep(time.Second)
		}
		slowUp.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(slowUp), nil)
		if err != nil {
			upDone <- fmt.Errorf("slow upload: %w", err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			upDone <- fmt.Errorf("slow upload: %s", resp.Status)
			return
		}
		upDone <- nil
	}()
	go func() {
		chunk := make([]byte, 512<<10)
		var got int64
		for i := 0; i < 24; i++ {
			slowDown.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := io.ReadFull(slowDown, chunk)
			got += int64(n)
			if err != nil {
				downDone <- fmt.Errorf("slow download after %d bytes: %w", got, err)
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		downDone <- nil
	}()

	// Idle after one request each.
	var conns []net.Conn
	for i := 0; i < idle; i++ {
		c := dial()
		request(t, c, "GET", "/v2/", host, -1)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("keep-alive connection %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		conns = append(conns, c)
	}
	// Never a byte.
	for i := 0; i < silent; i++ {
		conns = append(conns, dial())
	}
	// An upload that stops after 64 KiB of 64 MiB.
	stalledUp := dial()
	request(t, stalledUp, "PATCH", startUpload(t, e, "yocto/stalled"), host, 64<<20)
	if _, err := stalledUp.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	// A download whose client reads nothing.
	stalledDown := dial()
	request(t, stalledDown, "GET", "/v2/yocto/big/blobs/"+blob.String(), host, -1)

	// The server must let go of all of these while the slow ones go on.
	gone := map[string]net.Conn{"stalled upload": stalledUp, "stalled download": stalledDown}
	for i, c := range conns {
		gone[fmt.Sprintf("idle connection %d", i)] = c
	}
	holds := func() []string {
		peers := serverPeers(t, pid)
		var held []string
		for what, c := range gone {
			if peers[localPort(c)] {
				held = append(held, what)
			}
		}
		return held
	}
	opened := time.Now()
	if held := holds(); len(held) < idle+silent {
		t.Fatalf("the server holds %d of the connections, want at least %d", len(held), idle+silent)
	}
	deadline := opened.Add(15 * time.Second)
	for len(holds()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	held := holds()
	t.Logf("%s after they were opened, the server holds %d of the %d connections", time.Since(opened).Round(100*time.Millisecond), len(held), len(gone))
	if len(held) > 0 {
		slices.Sort(held)
		t.Fatalf("the server still holds %d connections %s after they went idle, e.g. %v", len(held), time.Since(opened).Round(time.Second), held[:min(len(held), 5)])
	}
	for i, c := range conns {
		closedByPeer(t, fmt.Sprintf("idle connection %d", i), c, time.Second)
	}
	peers := serverPeers(t, pid)
	if !peers[localPort(slowUp)] || !peers[localPort(slowDown)] {
		t.Errorf("the server dropped a connection that makes progress")
	}
	for _, done := range []chan error{upDone, downDone} {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	slowDown.Close()
	deadline = time.Now().Add(10 * time.Second)
	for len(serverPeers(t, pid)) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(serverPeers(t, pid)); n > 0 {
		t.Errorf("the server holds %d connection(s) at the end", n)
	}
	e.mustRun(t, 0, "status")
}
