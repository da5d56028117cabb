package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// peer describes a started pair of servers; it is saved as STATEDIR/peer.json.
type peer struct {
	EtcdPID        int
	APIServerPID   int
	EtcdURL        string
	APIServerURL   string
	Kubeconfig     string
	Ready          time.Duration // from starting etcd to the apiserver being ready
	APIServerReady time.Duration // from starting the apiserver to it being ready
}

const stateFile = "peer.json"

// start launches etcd and the apiserver with their state under dir and
// waits for both to be ready. On failure it stops whatever it started.
func start(bin, dir string, timeout time.Duration) (p peer, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return peer{}, fmt.Errorf("resolve %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return peer{}, fmt.Errorf("create state directory: %w", err)
	}
	certs, err := writePKI(dir)
	if err != nil {
		return peer{}, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return peer{}, err
	}
	p.EtcdURL = "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	p.APIServerURL = "https://127.0.0.1:" + strconv.Itoa(ports[2])
	p.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(p.Kubeconfig, p.APIServerURL, certs); err != nil {
		return peer{}, err
	}

	var started []int
	defer func() {
		if err != nil {
			for _, pid := range started {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}()

	begin := time.Now()
	etcd, err := launch(filepath.Join(bin, "etcd"), filepath.Join(dir, "etcd.log"),
		"--name", "peer",
		"--data-dir", filepath.Join(dir, "etcd-data"),
		"--listen-client-urls", p.EtcdURL,
		"--advertise-client-urls", p.EtcdURL,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "peer="+peerURL,
		"--log-level", "warn",
	)
	if err != nil {
		return peer{}, err
	}
	started = append(started, etcd.Pid)
	p.EtcdPID = etcd.Pid
	if err := waitReady(http.DefaultClient, p.EtcdURL+"/health", etcd, timeout); err != nil {
		return peer{}, fmt.Errorf("etcd (log %s): %w", filepath.Join(dir, "etcd.log"), err)
	}

	apiBegin := time.Now()
	api, err := launch(filepath.Join(bin, "apiextensions-apiserver"), filepath.Join(dir, "apiserver.log"),
		"--etcd-servers", p.EtcdURL,
		"--bind-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(ports[2]),
		"--tls-cert-file", certs.ServingCert,
		"--tls-private-key-file", certs.ServingKey,
		"--client-ca-file", certs.CA,
		"--authentication-skip-lookup",
		"--authentication-kubeconfig", p.Kubeconfig,
		"--authorization-kubeconfig", p.Kubeconfig,
		"--kubeconfig", p.Kubeconfig,
		"--enable-priority-and-fairness=false",
		"--disable-admission-plugins", "NamespaceLifecycle,MutatingAdmissionPolicy,MutatingAdmissionWebhook,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook",
	)
	if err != nil {
		return peer{}, err
	}
	started = append(started, api.Pid)
	p.APIServerPID = api.Pid
	client, err := adminClient(certs)
	if err != nil {
		return peer{}, err
	}
	if err := waitReady(client, p.APIServerURL+"/readyz?exclude=informer-sync", api, timeout); err != nil {
		return peer{}, fmt.Errorf("apiextensions-apiserver (log %s): %w", filepath.Join(dir, "apiserver.log"), err)
	}
	p.Ready = time.Since(begin)
	p.APIServerReady = time.Since(apiBegin)

	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return peer{}, fmt.Errorf("encode state: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, stateFile), data, 0o600); err != nil {
		return peer{}, fmt.Errorf("write state: %w", err)
	}
	return p, nil
}

// stop sends SIGTERM to the apiserver and etcd recorded under dir, in that
// order, and waits for each to exit, killing it after grace.
func stop(dir string, grace time.Duration) error {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	var p peer
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("decode %s: %w", stateFile, err)
	}
	var errs []error
	for _, pid := range []int{p.APIServerPID, p.EtcdPID} {
		if err := terminate(pid, grace); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// terminate stops pid with SIGTERM, then SIGKILL after grace; a process that
// is already gone is not an error.
func terminate(pid int, grace time.Duration) error {
	if pid <= 0 {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("signal %d: %w", pid, err)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond) // polling another session's process: no event to wait on
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	return nil
}

// launch starts binary in its own session with stdout and stderr appended to
// logPath, so it outlives peerctl.
func launch(binary, logPath string, args ...string) (*process, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	defer log.Close()
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	return &process{Pid: cmd.Process.Pid, exited: exited}, nil
}

// process is a started child; exited is closed when it ends.
type process struct {
	Pid    int
	exited chan struct{}
}

// waitReady polls url until it answers 200 OK, the process exits, or timeout
// passes.
func waitReady(client *http.Client, url string, proc *process, timeout time.Duration) error {
	deadline := time.After(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-proc.exited:
			return fmt.Errorf("exited before ready: %w", last)
		case <-deadline:
			return fmt.Errorf("not ready after %s: %w", timeout, last)
		case <-tick.C:
		}
	}
}

// adminClient returns an HTTP client that trusts the peer's CA and presents
// the admin client certificate.
func adminClient(certs pki) (*http.Client, error) {
	caPEM, err := os.ReadFile(certs.CA)
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no certificate in CA file")
	}
	admin, err := tls.LoadX509KeyPair(certs.AdminCert, certs.AdminKey)
	if err != nil {
		return nil, fmt.Errorf("load admin certificate: %w", err)
	}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs:      roots,
			Certificates: []tls.Certificate{admin},
			MinVersion:   tls.VersionTLS12,
		}},
	}, nil
}

// freePorts reserves n loopback TCP ports by listening on port 0, and
// releases them for the servers to bind.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writeKubeconfig writes a kubeconfig for server that authenticates with the
// admin client certificate.
func writeKubeconfig(path, server string, certs pki) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["peer"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: certs.CA}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificate: certs.AdminCert, ClientKey: certs.AdminKey}
	cfg.Contexts["peer"] = &clientcmdapi.Context{Cluster: "peer", AuthInfo: "admin"}
	cfg.CurrentContext = "peer"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}
