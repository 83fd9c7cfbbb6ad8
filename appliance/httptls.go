package appliance

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/kerf-edge/kerf/internal/atomicfile"
	"github.com/kerf-edge/kerf/transport"
)

// APIFingerprintName is the file, next to the admin token, that holds the
// operator API certificate's fingerprint, for `kerf` to pin.
const APIFingerprintName = "api-fingerprint"

// HTTPTLSConfig is the operator listener's key pair; empty: a self-signed
// one in <state_dir>/http-tls.
type HTTPTLSConfig struct {
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
}

// APIFingerprintPath is where kerfd keeps the operator API certificate's
// fingerprint while the API speaks TLS.
func (c *Config) APIFingerprintPath() string { return filepath.Join(c.StateDir, APIFingerprintName) }

// httpTLSDir holds the operator listener's self-signed key pair.
func (c *Config) httpTLSDir() string { return filepath.Join(c.StateDir, "http-tls") }

// HTTPNeedsTLS reports whether the operator listener is bound beyond
// loopback, where it speaks TLS only.
func (c *Config) HTTPNeedsTLS() bool {
	if c.Listen.HTTP == "" {
		return false
	}
	host, _, err := net.SplitHostPort(c.Listen.HTTP)
	return err != nil || !isLoopback(host)
}

// HTTPCert is the operator listener's certificate when it speaks TLS: the
// configured key pair, or the self-signed one made (on first use) in the
// state directory. Its fingerprint is written to APIFingerprintPath.
// ok is false when the listener stays plain (loopback or disabled).
func (c *Config) HTTPCert() (cert tls.Certificate, fp transport.Fingerprint, ok bool, err error) {
	if !c.HTTPNeedsTLS() {
		if rmErr := os.Remove(c.APIFingerprintPath()); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			return cert, fp, false, rmErr
		}
		return cert, fp, false, nil
	}
	t := c.Listen.HTTPTLS
	if t.CertFile != "" {
		cert, err = tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err == nil {
			fp = transport.FingerprintOf(cert.Certificate[0])
		}
	} else {
		cert, fp, err = transport.LoadOrCreateCert(c.httpTLSDir())
	}
	if err != nil {
		return cert, fp, false, fmt.Errorf("operator API TLS: %w", err)
	}
	if err := atomicfile.Write(c.APIFingerprintPath(), []byte(fp.String()+"\n"), 0o644); err != nil {
		return cert, fp, false, err
	}
	return cert, fp, true, nil
}

func (c *Config) validateHTTPTLS() error {
	if t := c.Listen.HTTPTLS; (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("listen.http_tls: cert_file and key_file go together")
	}
	return nil
}

// serveTLS wraps ln in TLS with cert.
func serveTLS(ln net.Listener, cert tls.Certificate) net.Listener {
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
}

// BrokerFingerprint is the embedded broker's certificate fingerprint when
// one of its listeners is bound beyond loopback and so speaks TLS: the
// configured key pair's, or the self-signed one's (made on first use, as
// the broker does at start). ok is false when the broker speaks no TLS.
func (c *Config) BrokerFingerprint() (fp transport.Fingerprint, ok bool, err error) {
	if !c.Ingest.Enabled || c.Ingest.Broker.Mode != "embedded" {
		return fp, false, nil
	}
	bc := c.BrokerConfig()
	if onLoopback(bc.NATSListen) && onLoopback(bc.MQTTListen) {
		return fp, false, nil
	}
	var cert tls.Certificate
	if bc.CertFile != "" {
		cert, err = tls.LoadX509KeyPair(bc.CertFile, bc.KeyFile)
	} else {
		cert, _, err = transport.LoadOrCreateCert(bc.TLSDir)
	}
	if err != nil {
		return fp, false, fmt.Errorf("broker TLS: %w", err)
	}
	return transport.FingerprintOf(cert.Certificate[0]), true, nil
}

// onLoopback reports whether addr, a listener's host:port, is on loopback.
func onLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && isLoopback(host)
}
