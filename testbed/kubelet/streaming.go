// The kubelet's streaming API for the test bed's node: exec, attach and
// port-forward, served with the kubelet's own streaming library
// (k8s.io/kubelet/pkg/cri/streaming), so the protocol is the real one —
// SPDY/3.1 from kube-apiserver, which translates kubectl's WebSockets.
// Commands run on this host, in the pod's folder, as this process's user.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/creack/pty"
	"k8s.io/apimachinery/pkg/types"
	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/kubelet/pkg/cri/streaming/portforward"
	remotecommandserver "k8s.io/kubelet/pkg/cri/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

const (
	idleTimeout           = 4 * time.Hour
	streamCreationTimeout = 30 * time.Second
)

type runtime struct{ root string }

// podDir is where a pod's commands start; the tests copy files in and out of it.
func (rt runtime) podDir(name string) string {
	dir := filepath.Join(rt.root, name)
	_ = os.MkdirAll(dir, 0o755)
	return dir
}

func (rt runtime) command(pod string, cmd []string) *exec.Cmd {
	c := exec.Command(cmd[0], cmd[1:]...)
	c.Dir = rt.podDir(pod)
	c.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + c.Dir, "TERM=xterm", "POD=" + pod}
	return c
}

// run starts cmd with the streams (a pseudo-terminal when tty) and returns its exit, as the kubelet does.
func run(c *exec.Cmd, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	if tty {
		f, err := pty.Start(c)
		if err != nil {
			return err
		}
		defer f.Close()
		go func() {
			for size := range resize {
				_ = pty.Setsize(f, &pty.Winsize{Rows: size.Height, Cols: size.Width})
			}
		}()
		if in != nil {
			go func() { _, _ = io.Copy(f, in) }()
		}
		done := make(chan struct{})
		go func() {
			_, _ = io.Copy(out, f)
			close(done)
		}()
		err = c.Wait()
		select {
		case <-done:
		case <-time.After(500 * time.Millisecond):
		}
		return exitError(err)
	}
	if in != nil {
		stdin, err := c.StdinPipe()
		if err != nil {
			return err
		}
		go func() {
			_, _ = io.Copy(stdin, in)
			_ = stdin.Close()
		}()
	}
	if out != nil {
		c.Stdout = out
	}
	if errOut != nil {
		c.Stderr = errOut
	}
	return exitError(c.Run())
}

// exitError makes an exit status something the streaming library reports as an exit code.
func exitError(err error) error {
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return utilexec.CodeExitError{Err: err, Code: exitErr.ExitCode()}
	}
	return err
}

func (rt runtime) ExecInContainer(_ context.Context, pod string, _ types.UID, _ string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	if len(cmd) == 0 {
		return fmt.Errorf("no command")
	}
	return run(rt.command(pod, cmd), in, out, errOut, tty, resize)
}

// Attach: the test bed's containers have no main process, so attaching runs `cat`,
// which echoes what is typed: enough to see attach's streams pass end to end.
func (rt runtime) AttachContainer(_ context.Context, pod string, _ types.UID, _ string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	return run(rt.command(pod, []string{"cat"}), in, out, errOut, tty, resize)
}

// PortForward dials the port on this host: a "pod" port is a host port.
func (rt runtime) PortForward(_ context.Context, _ string, _ types.UID, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return err
	}
	defer conn.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		_, _ = io.Copy(conn, stream)
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
		wg.Done()
	}()
	_, err = io.Copy(stream, conn)
	wg.Wait()
	return err
}

// route serves prefix{ns}/{pod}[/{container}]: pod is "ns/pod", container "" when the path has none.
func route(mux *http.ServeMux, prefix string, segments int, serve func(w http.ResponseWriter, r *http.Request, pod, container string)) {
	mux.HandleFunc(prefix, func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, prefix), "/")
		if len(parts) != segments {
			http.NotFound(w, r)
			return
		}
		container := ""
		if segments == 3 {
			container = parts[2]
		}
		serve(w, r, parts[0]+"/"+parts[1], container)
	})
}

// streamingRoutes: /exec/{ns}/{pod}/{container}, /attach/{ns}/{pod}/{container}, /portForward/{ns}/{pod}.
func streamingRoutes(mux *http.ServeMux, rt runtime) {
	remote := func(serve func(w http.ResponseWriter, r *http.Request, pod, container string, opts *remotecommandserver.Options)) func(http.ResponseWriter, *http.Request, string, string) {
		return func(w http.ResponseWriter, r *http.Request, pod, container string) {
			opts, err := remotecommandserver.NewOptions(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			serve(w, r, pod, container, opts)
		}
	}
	route(mux, "/exec/", 3, remote(func(w http.ResponseWriter, r *http.Request, pod, container string, opts *remotecommandserver.Options) {
		remotecommandserver.ServeExec(w, r, rt, pod, "", container, r.URL.Query()["command"], opts, idleTimeout, streamCreationTimeout, remotecommandconsts.SupportedStreamingProtocols)
	}))
	route(mux, "/attach/", 3, remote(func(w http.ResponseWriter, r *http.Request, pod, container string, opts *remotecommandserver.Options) {
		remotecommandserver.ServeAttach(w, r, rt, pod, "", container, opts, idleTimeout, streamCreationTimeout, remotecommandconsts.SupportedStreamingProtocols)
	}))
	route(mux, "/portForward/", 2, func(w http.ResponseWriter, r *http.Request, pod, _ string) {
		opts, err := portforward.NewV4Options(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		portforward.ServePortForward(w, r, rt, pod, "", opts, idleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
	})
}
