// A stand-in kubelet for the test bed. It serves the endpoints kube-apiserver
// proxies to: container logs (GET /containerLogs/{namespace}/{pod}/{container}),
// so that `logs -f` streams through a real API server, and exec, attach and
// port-forward (streaming.go), so kubectl's sessions reach a real process.
//
//	kubelet 127.0.0.1:PORT [PODS-DIR]
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 2 && len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: kubelet 127.0.0.1:PORT [PODS-DIR]")
		os.Exit(2)
	}
	cert, err := selfSigned()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubelet:", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	pods := filepath.Join(os.TempDir(), "gatehouse-testbed-pods")
	if len(os.Args) == 3 {
		pods = os.Args[2]
	}
	streamingRoutes(mux, runtime{root: pods})
	mux.HandleFunc("/containerLogs/", func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/containerLogs/"), "/")
		if len(parts) != 3 {
			http.NotFound(w, r)
			return
		}
		follow := r.URL.Query().Get("follow") == "true"
		w.Header().Set("Content-Type", "text/plain")
		flusher, _ := w.(http.Flusher)
		for i := 1; ; i++ {
			fmt.Fprintf(w, "%s/%s/%s line %d\n", parts[0], parts[1], parts[2], i)
			if flusher != nil {
				flusher.Flush()
			}
			if !follow && i >= 3 {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	server := &http.Server{Addr: os.Args[1], Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	listener, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubelet:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	if err := server.ServeTLS(listener, "", ""); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "kubelet:", err)
		os.Exit(1)
	}
}

// selfSigned makes a throwaway serving certificate: kube-apiserver does not verify
// kubelet certificates unless --kubelet-certificate-authority is set.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "testbed-kubelet"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
