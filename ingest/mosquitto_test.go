package ingest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// startMosquitto runs Debian's mosquitto on a free loopback port with TLS and
// a password file; the test is skipped only when the binary is missing.
func startMosquitto(t *testing.T) (addr string, roots *x509.CertPool) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
	}
	pw, _ := exec.LookPath("mosquitto_passwd")
	if bin == "" || pw == "" {
		t.Skip("mosquitto not installed (apt-get install mosquitto): external-broker test skipped")
	}
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	roots = x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert, key := write("cert.pem", certPEM), write("key.pem", keyPEM)
	pwFile := write("passwd", nil)
	if out, err := exec.Command(pw, "-b", pwFile, "kerfd", "s3cret").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous false\npassword_file %s\ncafile %s\ncertfile %s\nkeyfile %s\npersistence false\nlog_dest stderr\n",
		port, pwFile, cert, cert, key)
	if os.Getuid() == 0 {
		conf += "user root\n" // else it drops to the mosquitto user and cannot read the temp files
	}
	cmd := exec.Command(bin, "-c", write("mosquitto.conf", []byte(conf)))
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr, roots
		}
		select {
		case <-exited:
			t.Fatalf("mosquitto exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto not listening on %s: %s", addr, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mosquitto-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// External-broker mode: kerfd subscribes to Mosquitto over TLS with a
// password; a device's retained status and load reach a decision.
func TestMosquittoExternal(t *testing.T) {
	addr, roots := startMosquitto(t)
	tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	rec := &recorder{}
	e, _ := NewEngine([]Rule{baseRule()}, rec, EngineOptions{})
	p := NewPipeline(e, PipelineOptions{Tick: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if _, err := SubscribeMQTT(ctx, MQTTOptions{Broker: "ssl://" + addr, Username: "kerfd", Password: "wrong", TLS: tc, Timeout: 5 * time.Second}, p); err == nil {
		t.Fatal("wrong password accepted")
	}
	status := &Topic{Site: "plant", Node: "n1", Kind: KindStatus, Source: "kerfd"}
	s, err := SubscribeMQTT(ctx, MQTTOptions{Broker: "ssl://" + addr, Username: "kerfd", Password: "s3cret", TLS: tc, Status: status}, p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	do := mqtt.NewClientOptions().AddBroker("ssl://"+addr).SetClientID("cam-1").SetUsername("kerfd").SetPassword("s3cret").
		SetTLSConfig(tc).SetProtocolVersion(4).SetWill("edge/v1/plant/n1/status/cam-1", StatusOffline, 1, true)
	dev := mqtt.NewClient(do)
	if tok := dev.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer dev.Disconnect(100)
	// kerfd's own retained status is there for anyone who subscribes later.
	got := make(chan string, 1)
	dev.Subscribe(status.MQTT(), 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case got <- string(m.Payload()):
		default:
		}
	}).WaitTimeout(5 * time.Second)
	select {
	case st := <-got:
		if st != StatusOnline {
			t.Errorf("kerfd status %q", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no retained kerfd status")
	}
	dev.Publish("edge/v1/plant/n1/status/cam-1", 1, true, StatusOnline).WaitTimeout(5 * time.Second)
	dev.Publish("edge/v1/plant/n1/load/cam-1", 1, false, `[{"bn":"urn:dev:cam-1:","n":"queue_depth","u":"count","v":12}]`).WaitTimeout(5 * time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for rec.count() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no decision; stats %+v", p.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := rec.calls[0]; d.Profile != "7x10gb" || d.Inputs[0].Source != "plant/n1/cam-1" {
		t.Errorf("decision %+v", d)
	}
	if p.Liveness()["plant/n1/cam-1"] != StatusOnline {
		t.Errorf("liveness %v", p.Liveness())
	}
}
