package server

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/setpoint/setpoint/internal/pki"
)

// kubeconfigName names the cluster, user and context of written kubeconfigs.
const kubeconfigName = "setpoint"

// writeKubeconfig writes, atomically and readable only by its owner, a
// kubeconfig whose current context points at serverURL, trusting caPEM
// (none: the system's roots) and authenticating with the client
// certificate admin (none: no credential).
func writeKubeconfig(path, serverURL string, caPEM []byte, admin pki.Pair) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[kubeconfigName] = &clientcmdapi.Cluster{Server: serverURL, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[kubeconfigName] = &clientcmdapi.AuthInfo{ClientCertificateData: admin.CertPEM, ClientKeyData: admin.KeyPEM}
	cfg.Contexts[kubeconfigName] = &clientcmdapi.Context{Cluster: kubeconfigName, AuthInfo: kubeconfigName, Namespace: "default"}
	cfg.CurrentContext = kubeconfigName
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("server: encode kubeconfig: %w", err)
	}
	if err := pki.WriteFile(path, data); err != nil {
		return fmt.Errorf("server: kubeconfig: %w", err)
	}
	return nil
}
