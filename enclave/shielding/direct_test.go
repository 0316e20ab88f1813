package shielding_test

import (
	"crypto/hpke"
	"errors"
	"testing"

	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/enclave/shielding"
)

// enclaveKey plays the enclave's shielding key.
func enclaveKey(t testing.TB) (pub []byte, open func(info string, ct []byte) ([]byte, error)) {
	t.Helper()
	sk, err := shielding.KEM().GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return sk.PublicKey().Bytes(), func(info string, ct []byte) ([]byte, error) {
		return hpkeOpen(sk, info, ct)
	}
}

func TestGetterRoundTrip(t *testing.T) {
	pub, open := enclaveKey(t)
	rk, err := shielding.NewReplyKey()
	if err != nil {
		t.Fatal(err)
	}
	req, err := shielding.NewGetterRequest(pub, rk, []byte("signed getter"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open(shielding.InfoTrustedCall, req); err == nil {
		t.Fatal("a getter request opens as a trusted call")
	}
	pt, err := open(shielding.InfoGetter, req)
	if err != nil {
		t.Fatal(err)
	}
	r, err := shielding.DecodeGetterRequest(pt)
	if err != nil || string(r.Getter) != "signed getter" || string(r.ReplyKey) != string(rk.Public()) {
		t.Fatalf("request %+v %v", r, err)
	}
	resp, err := shielding.SealGetterResponse(r.ReplyKey, req, shielding.GetterResponse{Value: []byte{0x18, 42}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := rk.Open(req, resp)
	if err != nil || string(got.Value) != string([]byte{0x18, 42}) || got.Error != "" {
		t.Fatalf("opened %+v %v", got, err)
	}
	tampered := append([]byte(nil), resp...)
	tampered[len(tampered)-1] ^= 1
	other := append([]byte(nil), req...)
	other[0] ^= 1
	for name, c := range map[string]struct{ req, resp []byte }{
		"tampered response": {req, tampered},
		"other request":     {other, resp},
		"truncated":         {req, resp[:40]},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := rk.Open(c.req, c.resp); !errors.Is(err, shielding.ErrGetterReply) {
				t.Fatalf("error %v", err)
			}
		})
	}
}

func TestDecodeGetterRequestRejects(t *testing.T) {
	bad, _ := codec.Marshal(shielding.GetterRequest{Getter: []byte("g"), ReplyKey: make([]byte, 10)})
	for name, pt := range map[string][]byte{
		"garbage":       {0xff, 0x00},
		"short key":     bad,
		"too large":     make([]byte, shielding.MaxGetterRequest+1),
		"unknown field": mustMarshal(t, map[string]any{"getter": []byte("g"), "reply_key": make([]byte, shielding.PublicKeySize), "x": 1}),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := shielding.DecodeGetterRequest(pt); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := shielding.SealGetterResponse(make([]byte, 5), []byte("r"), shielding.GetterResponse{}); err == nil {
		t.Fatal("sealed to a bad reply key")
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := codec.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hpkeOpen(sk hpke.PrivateKey, info string, ct []byte) ([]byte, error) {
	return hpke.Open(sk, shielding.KDF(), shielding.AEAD(), []byte(info), ct)
}

// FuzzDecodeGetterRequest: whatever decrypted bytes reach the enclave,
// decoding never panics and accepts only a canonical request with a valid
// reply key.
func FuzzDecodeGetterRequest(f *testing.F) {
	sk, err := shielding.KEM().GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	good, _ := codec.Marshal(shielding.GetterRequest{Getter: []byte("g"), ReplyKey: sk.PublicKey().Bytes()})
	f.Add(good)
	f.Add([]byte{0xa2})
	f.Fuzz(func(t *testing.T, pt []byte) {
		r, err := shielding.DecodeGetterRequest(pt)
		if err != nil {
			return
		}
		again, err := codec.Marshal(r)
		if err != nil || string(again) != string(pt) {
			t.Fatalf("accepted non-canonical request %x", pt)
		}
		if _, err := shielding.ParsePublicKey(r.ReplyKey); err != nil {
			t.Fatalf("accepted a bad reply key: %v", err)
		}
	})
}
