package enclave

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

func TestProvisionMessages(t *testing.T) {
	var b bytes.Buffer
	want := provisionRequest{Shard: [32]byte{7}, ChainID: "c"}
	if err := writeMessage(&b, want); err != nil {
		t.Fatal(err)
	}
	valid := b.Bytes()
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"valid", valid, true},
		{"truncated", valid[:len(valid)-1], false},
		{"empty", nil, false},
		{"zero length", []byte{0, 0, 0, 0}, false},
		{"too long", []byte{0x7f, 0, 0, 0}, false},
		{"unknown field", append([]byte{0, 0, 0, 7}, 0xa1, 0x63, 'b', 'a', 'd', 0x01, 0x00), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got provisionRequest
			err := readMessage(bytes.NewReader(tt.in), &got)
			if tt.ok != (err == nil) || (tt.ok && got != want) {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}

func FuzzReadProvisionMessage(f *testing.F) {
	var b bytes.Buffer
	writeMessage(&b, provisionRequest{Shard: [32]byte{1}, ChainID: "chain"})
	f.Add(b.Bytes())
	f.Add([]byte{0, 0, 0, 1, 0xa0})
	f.Fuzz(func(t *testing.T, in []byte) {
		var pl provisionPayload
		readMessage(bytes.NewReader(in), &pl)
	})
}

// TestPump checks the relay semantics: a step returns what the session
// wrote up to its next wait for input, and the session's end.
func TestPump(t *testing.T) {
	p := newPump(64)
	p.run(func(c net.Conn) error {
		c.Write([]byte("hello"))
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		c.Write(append([]byte("got "), buf...))
		if _, err := io.ReadFull(c, buf[:1]); err != nil {
			return err
		}
		return errors.New("done")
	})
	out, ended, err := p.step(nil)
	if string(out) != "hello" || ended || err != nil {
		t.Fatalf("first step %q %v %v", out, ended, err)
	}
	// Part of what the session waits for: no output yet.
	if out, ended, err = p.step([]byte("wor")); len(out) != 0 || ended || err != nil {
		t.Fatalf("partial step %q %v %v", out, ended, err)
	}
	if out, ended, err = p.step([]byte("ld")); string(out) != "got world" || ended || err != nil {
		t.Fatalf("second step %q %v %v", out, ended, err)
	}
	if _, ended, err = p.step([]byte("!")); !ended || err == nil || err.Error() != "done" {
		t.Fatalf("last step %v %v", ended, err)
	}
	if _, _, err := p.step(make([]byte, 65)); !errors.Is(err, errRecordTooLarge) {
		t.Fatalf("oversized input: %v", err)
	}

	// An abandoned session ends.
	q := newPump(64)
	ended2 := make(chan error, 1)
	q.run(func(c net.Conn) error {
		_, err := c.Read(make([]byte, 1))
		ended2 <- err
		return err
	})
	q.step(nil)
	q.close()
	if err := <-ended2; !errors.Is(err, errPumpClosed) {
		t.Fatalf("closed session read: %v", err)
	}
}
