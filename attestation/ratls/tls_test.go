package ratls

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
)

func TestNewCertificateSim(t *testing.T) {
	e := newSimEnv(t)
	tc, err := NewCertificate(e.a, CertOptions{Now: simTime, Validity: time.Hour, CommonName: "worker-1"})
	if err != nil {
		t.Fatal(err)
	}
	cert := tc.Leaf
	if cert == nil || len(tc.Certificate) != 1 || cert.Subject.CommonName != "worker-1" {
		t.Fatalf("unexpected certificate %+v", cert)
	}
	if !cert.NotAfter.Equal(simTime.Add(time.Hour)) || !cert.NotBefore.Before(simTime) {
		t.Errorf("validity %s .. %s", cert.NotBefore, cert.NotAfter)
	}
	var found bool
	for _, x := range cert.Extensions {
		if x.Id.Equal(oidQuote) {
			found = true
			if x.Critical {
				t.Error("quote extension is critical; OE/EGo peers would reject it")
			}
		}
	}
	if !found {
		t.Fatal("no quote extension")
	}

	v := e.verifier(measurementA)
	res, err := v.VerifyCertificate(cert)
	if err != nil {
		t.Fatalf("VerifyCertificate: %v", err)
	}
	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	if res.MRENCLAVE != measurementA || !bytes.Equal(res.ReportData[:32], spki[:]) {
		t.Errorf("MRENCLAVE %x, report data %x", res.MRENCLAVE, res.ReportData)
	}

	tests := []struct {
		name string
		now  time.Time
		want error
	}{
		{"expired", simTime.Add(time.Hour + time.Second), ErrCertificate},
		{"not yet valid", simTime.Add(-2 * clockSkew), ErrCertificate},
	}
	for _, tt := range tests {
		v := e.verifier(measurementA)
		v.Now = fixed(tt.now)
		if _, err := v.VerifyCertificate(cert); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}

	// Two certificates never share a key.
	tc2, err := NewCertificate(e.a, CertOptions{Now: simTime})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(tc2.Leaf.RawSubjectPublicKeyInfo, cert.RawSubjectPublicKeyInfo) {
		t.Error("key reused")
	}
	if d := tc2.Leaf.NotAfter.Sub(simTime); d != DefaultValidity {
		t.Errorf("default validity %s", d)
	}
}

type failingBackend struct{}

func (failingBackend) Quote([64]byte) ([]byte, error) { return nil, errors.New("no quoting enclave") }
func (failingBackend) Measurement() [32]byte          { return [32]byte{} }
func (failingBackend) SealingKey(string) ([]byte, error) {
	return nil, errors.New("unsupported")
}

func TestNewCertificateErrors(t *testing.T) {
	if _, err := NewCertificate(nil, CertOptions{}); err == nil {
		t.Error("nil backend accepted")
	}
	if _, err := NewCertificate(failingBackend{}, CertOptions{}); err == nil {
		t.Error("quote failure ignored")
	}
}

// outcome of a handshake: each side's error and, on success, what it
// verified of the other.
type outcome struct {
	serverErr, clientErr error
	serverSaw, clientSaw *attestation.Result
}

// handshake runs a mutual RA-TLS connection on 127.0.0.1 and a one-message
// round trip.
func handshake(t *testing.T, server, client *tls.Config, sv, cv *Verifier) outcome {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	type result struct {
		err error
		res *attestation.Result
	}
	done := make(chan result, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer conn.Close()
		// A deadline only so a bug cannot hang the test; no outcome
		// depends on it.
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		tc := tls.Server(conn, server)
		if err := tc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		res, err := sv.PeerResult(tc.ConnectionState())
		if err != nil {
			done <- result{err: err}
			return
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(tc, buf); err != nil {
			done <- result{err: err}
			return
		}
		if _, err := tc.Write([]byte("pong")); err != nil {
			done <- result{err: err}
			return
		}
		done <- result{res: res}
	}()

	cres, cerr := func() (*attestation.Result, error) {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		tc := tls.Client(conn, client)
		if err := tc.Handshake(); err != nil {
			return nil, err
		}
		res, err := cv.PeerResult(tc.ConnectionState())
		if err != nil {
			return nil, err
		}
		// In TLS 1.3 the client finishes its handshake before the server
		// has checked the client certificate; a rejection shows on read.
		if _, err := tc.Write([]byte("ping")); err != nil {
			return nil, err
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(tc, buf); err != nil {
			return nil, err
		}
		if string(buf) != "pong" {
			return nil, errors.New("bad reply")
		}
		return res, nil
	}()
	r := <-done
	return outcome{serverErr: r.err, clientErr: cerr, serverSaw: r.res, clientSaw: cres}
}

func TestMutualTLS(t *testing.T) {
	e := newSimEnv(t)
	serverCert, err := NewCertificate(e.a, CertOptions{Now: simTime})
	if err != nil {
		t.Fatal(err)
	}
	clientCert, err := NewCertificate(e.b, CertOptions{Now: simTime})
	if err != nil {
		t.Fatal(err)
	}
	plain, plainKey := selfSigned(t)
	plainCert := tls.Certificate{Certificate: [][]byte{plain.Raw}, PrivateKey: plainKey, Leaf: plain}

	tests := []struct {
		name         string
		serverAllows [][32]byte // client measurements the server admits
		clientAllows [][32]byte // server measurements the client admits
		clientCert   *tls.Certificate
		serverErr    error // nil: success expected
		clientErr    error
	}{
		{name: "both admitted", serverAllows: [][32]byte{measurementB}, clientAllows: [][32]byte{measurementA}},
		{name: "neither admitted", serverAllows: [][32]byte{measurementC}, clientAllows: [][32]byte{measurementC},
			clientErr: attestation.ErrMRENCLAVENotAllowed, serverErr: errRemote},
		{name: "client rejects server", serverAllows: [][32]byte{measurementB}, clientAllows: [][32]byte{measurementC},
			clientErr: attestation.ErrMRENCLAVENotAllowed, serverErr: errRemote},
		{name: "server rejects client", serverAllows: [][32]byte{measurementC}, clientAllows: [][32]byte{measurementA},
			serverErr: attestation.ErrMRENCLAVENotAllowed, clientErr: errRemote},
		{name: "client without attestation", serverAllows: [][32]byte{measurementB}, clientAllows: [][32]byte{measurementA},
			clientCert: &plainCert, serverErr: ErrNoAttestation, clientErr: errRemote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sv, cv := e.verifier(tt.serverAllows...), e.verifier(tt.clientAllows...)
			cc := clientCert
			if tt.clientCert != nil {
				cc = *tt.clientCert
			}
			scfg, err := ServerConfig(serverCert, sv)
			if err != nil {
				t.Fatal(err)
			}
			ccfg, err := ClientConfig(cc, cv)
			if err != nil {
				t.Fatal(err)
			}
			o := handshake(t, scfg, ccfg, sv, cv)
			t.Logf("server: %v; client: %v", o.serverErr, o.clientErr)
			checkSide(t, "server", o.serverErr, tt.serverErr)
			checkSide(t, "client", o.clientErr, tt.clientErr)
			if tt.serverErr == nil && tt.clientErr == nil {
				if o.serverSaw.MRENCLAVE != measurementB || o.clientSaw.MRENCLAVE != measurementA {
					t.Errorf("server saw %x, client saw %x", o.serverSaw.MRENCLAVE, o.clientSaw.MRENCLAVE)
				}
			}
		})
	}

	// A client with a plain WebPKI-less server: the client refuses it.
	t.Run("server without attestation", func(t *testing.T) {
		sv, cv := e.verifier(measurementB), e.verifier(measurementA)
		scfg, _ := ServerConfig(plainCert, sv)
		ccfg, _ := ClientConfig(clientCert, cv)
		o := handshake(t, scfg, ccfg, sv, cv)
		checkSide(t, "client", o.clientErr, ErrNoAttestation)
		checkSide(t, "server", o.serverErr, errRemote)
	})
}

// errRemote stands for "the handshake failed because the peer rejected us"
// (a TLS alert or a closed connection).
var errRemote = errors.New("peer rejected the connection")

func checkSide(t *testing.T, side string, got, want error) {
	t.Helper()
	switch {
	case want == nil:
		if got != nil {
			t.Errorf("%s: unexpected error %v", side, got)
		}
	case want == errRemote:
		if got == nil {
			t.Errorf("%s: succeeded, want failure caused by the peer", side)
		}
	default:
		if !errors.Is(got, want) {
			t.Errorf("%s: %v, want %v", side, got, want)
		}
	}
}

func TestConfigs(t *testing.T) {
	e := newSimEnv(t)
	cert, err := NewCertificate(e.a, CertOptions{Now: simTime})
	if err != nil {
		t.Fatal(err)
	}
	v := e.verifier()
	s, err := ServerConfig(cert, v)
	if err != nil {
		t.Fatal(err)
	}
	if s.MinVersion != tls.VersionTLS13 || s.MaxVersion != tls.VersionTLS13 || s.ClientAuth != tls.RequireAnyClientCert ||
		s.VerifyPeerCertificate == nil || !s.SessionTicketsDisabled {
		t.Errorf("server config %+v", s)
	}
	c, err := ClientConfig(cert, v)
	if err != nil {
		t.Fatal(err)
	}
	if c.MinVersion != tls.VersionTLS13 || !c.InsecureSkipVerify || c.VerifyPeerCertificate == nil || c.ClientSessionCache != nil {
		t.Errorf("client config %+v", c)
	}
	if _, err := ServerConfig(cert, nil); err == nil {
		t.Error("nil verifier accepted")
	}
	if _, err := ClientConfig(tls.Certificate{}, v); err == nil {
		t.Error("empty certificate accepted")
	}
	if err := v.VerifyPeerCertificate(nil, nil); !errors.Is(err, ErrNoAttestation) {
		t.Errorf("no certificates: %v", err)
	}
	if err := v.VerifyPeerCertificate([][]byte{{0x30, 0x00}}, nil); !errors.Is(err, ErrCertificate) {
		t.Errorf("garbage certificate: %v", err)
	}
	if _, err := v.PeerResult(tls.ConnectionState{}); !errors.Is(err, ErrNoAttestation) {
		t.Errorf("PeerResult without certificates: %v", err)
	}
}
