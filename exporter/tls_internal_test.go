package exporter

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/tracekeeper/tracekeeper/internal/otlptest"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type testPKI struct {
	caPool                        *x509.CertPool
	server                        tls.Certificate
	caFile, clientCert, clientKey string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage, ip net.IP) (certPEM, keyPEM []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature}
		if ip != nil {
			tmpl.IPAddresses = []net.IP{ip}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	}
	srvCert, srvKey := issue(2, x509.ExtKeyUsageServerAuth, net.ParseIP("127.0.0.1"))
	cliCert, cliKey := issue(3, x509.ExtKeyUsageClientAuth, nil)
	p := testPKI{caPool: x509.NewCertPool(),
		caFile:     filepath.Join(dir, "ca.pem"),
		clientCert: filepath.Join(dir, "client.pem"),
		clientKey:  filepath.Join(dir, "client-key.pem"),
	}
	p.caPool.AddCert(ca)
	if p.server, err = tls.X509KeyPair(srvCert, srvKey); err != nil {
		t.Fatal(err)
	}
	for file, data := range map[string][]byte{
		p.caFile:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		p.clientCert: cliCert,
		p.clientKey:  cliKey,
	} {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func startTLSReceiver(t *testing.T, p testPKI, requireClientCert bool) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{p.server}}
	if requireClientCert {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = p.caPool
	}
	return otlptest.NewHTTPS(t, nil, cfg).Endpoint()
}

func exportOnce(t *testing.T, e *Exporter) Stats {
	t.Helper()
	if err := e.ExportSpans(context.Background(), otlptest.Indexed(2)); err != nil {
		t.Fatal(err)
	}
	if err := e.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	shutdown(t, e)
	return e.Stats()
}

func TestTLSVerifiesByDefault(t *testing.T) {
	p := newTestPKI(t)
	addr := startTLSReceiver(t, p, false)

	// The server's CA is not among the system roots: refused for good.
	s := exportOnce(t, New(WithEndpoint(addr), WithLogger(zap.NewNop())))
	if s.Dropped.PermanentError != 2 || s.Retries != 0 {
		t.Fatalf("untrusted server: got %+v", s)
	}
	// Trusting its CA makes it work.
	s = exportOnce(t, New(WithEndpoint(addr), WithTLSClientConfig(&tls.Config{RootCAs: p.caPool})))
	if s.Exported != 2 {
		t.Fatalf("trusted server: got %+v", s)
	}
}

func TestMutualTLSFromEnvironment(t *testing.T) {
	p := newTestPKI(t)
	addr := startTLSReceiver(t, p, true)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://"+addr+"/v1/traces")
	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", p.caFile)
	t.Setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", p.clientCert)
	t.Setenv("OTEL_EXPORTER_OTLP_CLIENT_KEY", p.clientKey)
	if s := exportOnce(t, New()); s.Exported != 2 {
		t.Fatalf("mTLS configured from the environment: got %+v", s)
	}
}

func TestGRPCMutualTLS(t *testing.T) {
	p := newTestPKI(t)
	g := otlptest.NewGRPC(t, nil, grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{p.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.caPool,
	})))

	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://"+g.Endpoint())
	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", p.caFile)
	t.Setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", p.clientCert)
	t.Setenv("OTEL_EXPORTER_OTLP_CLIENT_KEY", p.clientKey)
	if s := exportOnce(t, New()); s.Exported != 2 {
		t.Fatalf("gRPC with mTLS from the environment: got %+v", s)
	}
}
