package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
)

// sinkFunc is an events.Sink calling a function.
type sinkFunc func(any)

func (f sinkFunc) Emit(e any) { f(e) }

// Another program takes the port between start's check and the launch and
// answers /v2/: start must not take that answer for its server's. The
// server cannot listen and exits; start fails and leaves no pid file.
func TestStartPortTakenDuringLaunch(t *testing.T) {
	c := testConfig(t, nil)
	o, _ := testOptions(t)
	var once sync.Once
	o.Events = sinkFunc(func(e any) {
		if _, ok := e.(Launching); !ok {
			return
		}
		once.Do(func() {
			ln, err := net.Listen("tcp", ":"+c.Port)
			if err != nil {
				t.Errorf("taking the port: %v", err)
				return
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
		})
	})
	stopAtEnd(t, c, o)
	start, err := Start(context.Background(), c, o)
	if !errors.Is(err, errExited) {
		t.Fatalf("start with the port taken during launch: %+v, %v; want the server's exit", start, err)
	}
	if _, err := os.Stat(runstate.PidFile(c)); !os.IsNotExist(err) {
		t.Errorf("pid file left behind (%v)", err)
	}
}
