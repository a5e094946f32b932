package examples

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// manifests holds the examples' objects, decoded strictly (an unknown or
// misspelt field, a duplicate key or a value of the wrong type fails) into
// the Kubernetes API's own Go types.
type manifests struct {
	namespaces  []corev1.Namespace
	accounts    []corev1.ServiceAccount
	claims      []corev1.PersistentVolumeClaim
	deployments []appsv1.Deployment
	services    []corev1.Service
	webhooks    []admissionregistrationv1.ValidatingWebhookConfiguration
}

func loadManifests(t *testing.T, caBundle string) manifests {
	t.Helper()
	var m manifests
	files, _ := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no manifests in kubernetes/")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// The documented step: caBundle is filled in at apply time.
		raw = bytes.ReplaceAll(raw, []byte("CA_BUNDLE"), []byte(caBundle))
		for i, doc := range regexp.MustCompile(`(?m)^---$`).Split(string(raw), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			var target any
			switch meta.APIVersion + " " + meta.Kind {
			case "v1 Namespace":
				m.namespaces = append(m.namespaces, corev1.Namespace{})
				target = &m.namespaces[len(m.namespaces)-1]
			case "v1 ServiceAccount":
				m.accounts = append(m.accounts, corev1.ServiceAccount{})
				target = &m.accounts[len(m.accounts)-1]
			case "v1 PersistentVolumeClaim":
				m.claims = append(m.claims, corev1.PersistentVolumeClaim{})
				target = &m.claims[len(m.claims)-1]
			case "apps/v1 Deployment":
				m.deployments = append(m.deployments, appsv1.Deployment{})
				target = &m.deployments[len(m.deployments)-1]
			case "v1 Service":
				m.services = append(m.services, corev1.Service{})
				target = &m.services[len(m.services)-1]
			case "admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration":
				m.webhooks = append(m.webhooks, admissionregistrationv1.ValidatingWebhookConfiguration{})
				target = &m.webhooks[len(m.webhooks)-1]
			default:
				t.Fatalf("%s document %d: %s %s is not a kind this test knows", f, i, meta.APIVersion, meta.Kind)
			}
			// As the API server decodes: case-sensitive field names,
			// unknown and duplicate fields refused.
			js, err := yaml.YAMLToJSONStrict([]byte(doc))
			if err != nil {
				t.Fatalf("%s document %d (%s): %v", f, i, meta.Kind, err)
			}
			strict, err := k8sjson.UnmarshalStrict(js, target, k8sjson.DisallowDuplicateFields, k8sjson.DisallowUnknownFields)
			if err != nil {
				t.Fatalf("%s document %d (%s): %v", f, i, meta.Kind, err)
			}
			for _, e := range strict {
				t.Errorf("%s document %d (%s): %v", f, i, meta.Kind, e)
			}
		}
	}
	return m
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// TestKubernetesManifests checks what the API server would refuse and what
// would make the installation not work: names, selectors, references
// between the objects, vigil serve's flags, and the webhook's rules.
func TestKubernetesManifests(t *testing.T) {
	_, caPEM, _ := serverCert(t, "vigil.vigil.svc")
	m := loadManifests(t, base64.StdEncoding.EncodeToString(caPEM))
	if len(m.deployments) != 1 || len(m.services) != 1 || len(m.webhooks) != 1 || len(m.namespaces) != 1 {
		t.Fatalf("want one namespace, deployment, service and webhook configuration: %+v", m)
	}
	ns := m.namespaces[0].Name
	dep, svc, hook := m.deployments[0], m.services[0], m.webhooks[0]

	for _, name := range []string{ns, dep.Name, svc.Name, hook.Name} {
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			t.Errorf("name %q: %v", name, errs)
		}
	}
	for _, o := range []string{dep.Namespace, svc.Namespace, m.claims[0].Namespace, m.accounts[0].Namespace} {
		if o != ns {
			t.Errorf("object in namespace %q, want %q", o, ns)
		}
	}
	for k, v := range dep.Spec.Selector.MatchLabels {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("the Deployment's selector %s=%s does not match its pod template", k, v)
		}
		if svc.Spec.Selector[k] != v {
			t.Errorf("the Service's selector does not select the Deployment's pods (%s=%s)", k, v)
		}
	}
	if dep.Spec.Template.Spec.ServiceAccountName != m.accounts[0].Name {
		t.Errorf("service account %q is not the one defined", dep.Spec.Template.Spec.ServiceAccountName)
	}

	// Every volume mount has its volume, and the claim is defined.
	pod := dep.Spec.Template.Spec
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	c := pod.Containers[0]
	for _, vm := range c.VolumeMounts {
		v, ok := volumes[vm.Name]
		if !ok {
			t.Errorf("volume mount %s has no volume", vm.Name)
		}
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName != m.claims[0].Name {
			t.Errorf("claim %s is not defined", v.PersistentVolumeClaim.ClaimName)
		}
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		pod.SecurityContext.RunAsUser == nil || *pod.SecurityContext.RunAsUser != 65532 {
		t.Error("the container must run as the image's non-root user (65532) on a read-only root file system")
	}

	// The arguments are flags vigil serve has, and the files they name are
	// mounted.
	help, err := exec.Command(vigil(t), "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("vigil serve --help: %v\n%s", err, help)
	}
	if c.Args[0] != "serve" {
		t.Fatalf("args %q: want vigil serve", c.Args)
	}
	for _, a := range c.Args[1:] {
		flag, value, _ := strings.Cut(a, "=")
		if !bytes.Contains(help, []byte("  "+flag+" ")) && !bytes.Contains(help, []byte(" "+flag+"\n")) {
			t.Errorf("%s: vigil serve has no such flag", flag)
		}
		if strings.HasPrefix(value, "/etc/vigil/") || strings.HasPrefix(value, "/data") {
			mounted := false
			for _, vm := range c.VolumeMounts {
				if strings.HasPrefix(value, vm.MountPath) {
					mounted = true
				}
			}
			if !mounted {
				t.Errorf("%s: %s is on no mounted volume", flag, value)
			}
		}
	}

	// Probes and the Service reach the container's port by name.
	port := c.Ports[0]
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != port.Name || p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("probe %+v: want HTTPS on port %s", p, port.Name)
		}
	}
	if svc.Spec.Ports[0].TargetPort.String() != port.Name {
		t.Errorf("the Service targets %s, want the container's port %s", svc.Spec.Ports[0].TargetPort.String(), port.Name)
	}

	// The webhook: fail closed, side-effect free, v1 reviews, through the
	// Service, never judging the namespaces the cluster (and Vigil itself)
	// need to start.
	if len(hook.Webhooks) != 1 {
		t.Fatalf("%d webhooks, want 1", len(hook.Webhooks))
	}
	w := hook.Webhooks[0]
	if errs := validation.IsDNS1123Subdomain(w.Name); len(errs) > 0 || strings.Count(w.Name, ".") < 2 {
		t.Errorf("webhook name %q must be a fully qualified name of three or more labels", w.Name)
	}
	if w.FailurePolicy == nil || *w.FailurePolicy != admissionregistrationv1.Fail {
		t.Error("failurePolicy must be Fail: unknown never reads as pass")
	}
	if w.SideEffects == nil || *w.SideEffects != admissionregistrationv1.SideEffectClassNone {
		t.Error("sideEffects must be None")
	}
	if len(w.AdmissionReviewVersions) != 1 || w.AdmissionReviewVersions[0] != "v1" {
		t.Errorf("admissionReviewVersions %v, want [v1] (the only version Vigil reads)", w.AdmissionReviewVersions)
	}
	ref := w.ClientConfig.Service
	if ref == nil || ref.Name != svc.Name || ref.Namespace != ns || ref.Port == nil || *ref.Port != svc.Spec.Ports[0].Port {
		t.Errorf("clientConfig.service %+v does not name the Service %s/%s port %d", ref, ns, svc.Name, svc.Spec.Ports[0].Port)
	}
	excluded := map[string]bool{}
	for _, e := range w.NamespaceSelector.MatchExpressions {
		if e.Key == "kubernetes.io/metadata.name" && e.Operator == "NotIn" {
			for _, v := range e.Values {
				excluded[v] = true
			}
		}
	}
	for _, n := range []string{"kube-system", ns} {
		if !excluded[n] {
			t.Errorf("namespace %s is judged by the webhook: Vigil could block its own start or the cluster's", n)
		}
	}
	resources := map[string]bool{}
	for _, r := range w.Rules {
		for _, res := range r.Resources {
			resources[r.APIGroups[0]+"/"+res] = true
		}
	}
	for _, want := range []string{"/pods", "apps/deployments", "apps/statefulsets", "apps/daemonsets", "batch/jobs", "batch/cronjobs"} {
		if !resources[want] {
			t.Errorf("the webhook does not judge %s", want)
		}
	}
}

// TestKubernetesAdmissionPath starts vigil serve with the Deployment's
// arguments (paths moved into a temporary directory) and calls it as the
// API server would through the ValidatingWebhookConfiguration: the
// configured path, TLS verified with the configured caBundle for the
// Service's DNS name, an AdmissionReview v1 for a pod whose image was never
// scanned, which must be refused.
func TestKubernetesAdmissionPath(t *testing.T) {
	dir := t.TempDir()
	certPEM, caPEM, keyPEM := serverCert(t, "vigil.vigil.svc")
	m := loadManifests(t, base64.StdEncoding.EncodeToString(caPEM))
	c := m.deployments[0].Spec.Template.Spec.Containers[0]
	w := m.webhooks[0].Webhooks[0]

	files := map[string][]byte{"/etc/vigil/tls/tls.crt": certPEM, "/etc/vigil/tls/tls.key": keyPEM}
	seal := make([]byte, 32)
	rand.Read(seal)
	files["/etc/vigil/seal/seal.key"] = seal
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	var args []string
	for _, a := range c.Args {
		flag, value, _ := strings.Cut(a, "=")
		switch {
		case flag == "--addr":
			a = "--addr=" + addr
		case strings.HasPrefix(value, "/"):
			local := filepath.Join(dir, value)
			if data, ok := files[value]; ok {
				if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(local, data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			a = flag + "=" + local
		}
		args = append(args, a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, vigil(t), args...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Env = append(os.Environ(), "VIGIL_CONFIG_DIR="+t.TempDir())
	for _, e := range c.Env {
		v := e.Value
		if strings.HasPrefix(v, "/") {
			v = filepath.Join(dir, v)
		}
		cmd.Env = append(cmd.Env, e.Name+"="+v)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()

	// The API server's client: it trusts caBundle and dials the Service's
	// name, here pointed at the local server.
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(w.ClientConfig.CABundle) {
		t.Fatal("caBundle holds no certificate")
	}
	svcName := w.ClientConfig.Service.Name + "." + w.ClientConfig.Service.Namespace + ".svc"
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: svcName},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	base := "https://" + svcName + ":" + fmt.Sprint(*w.ClientConfig.Service.Port)

	probe := c.ReadinessProbe.HTTPGet.Path
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := client.Get(base + probe)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("vigil serve never became ready on %s (%v)\n%s", probe, err, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
		"uid":"7f0b2c9e-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
		"kind":{"group":"","version":"v1","kind":"Pod"},
		"resource":{"group":"","version":"v1","resource":"pods"},
		"namespace":"shop","operation":"CREATE",
		"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},
		"spec":{"containers":[{"name":"web","image":"registry.example.com/shop/web@sha256:` + strings.Repeat("ab", 32) + `"}]}}}}`
	resp, err := client.Post(base+*w.ClientConfig.Service.Path, "application/json", strings.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s answered %d: %s", *w.ClientConfig.Service.Path, resp.StatusCode, body)
	}
	var answer struct {
		Response struct {
			UID     string `json:"uid"`
			Allowed bool   `json:"allowed"`
			Status  struct {
				Message string `json:"message"`
			} `json:"status"`
		} `json:"response"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	if answer.Response.UID != "7f0b2c9e-1a2b-4c3d-8e9f-0a1b2c3d4e5f" || answer.Response.Allowed {
		t.Fatalf("a pod whose image was never scanned: want it refused, got %s", body)
	}
}

// serverCert makes a CA and a server certificate for dnsName it issued;
// PEM of the certificate, the CA and the server's key.
func serverCert(t *testing.T, dnsName string) (certPEM, caPEM, keyPEM []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigil test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dnsName},
		DNSNames:  []string{dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
