package pcs

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// Seeds live in testdata/fuzz/<target>/: small hand-written documents in
// each supported layout.

func FuzzParseTCBInfo(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseTCBInfo(data, nil)
		if err != nil {
			return
		}
		// What parses must marshal back to a document that parses the same.
		body, err := marshalTCBInfo(&s.Info)
		if err != nil {
			t.Fatalf("marshal parsed info: %v", err)
		}
		again, err := parseTCBInfoBody(body)
		if err != nil {
			t.Fatalf("reparse %s: %v", body, err)
		}
		if !reflect.DeepEqual(*again, s.Info) {
			t.Fatalf("round trip changed the info:\n got %+v\nwant %+v", *again, s.Info)
		}
		var c [16]uint8
		for i := range c {
			c[i] = 0xff
		}
		_, _ = s.Info.Evaluate(s.Info.FMSPC, s.Info.PCEID, c, 0xffff)
	})
}

func FuzzParseQEIdentity(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseQEIdentity(data, nil)
		if err != nil {
			return
		}
		body, err := marshalQEIdentity(&s.Identity)
		if err != nil {
			t.Fatalf("marshal parsed identity: %v", err)
		}
		again, err := parseQEIdentityBody(body)
		if err != nil {
			t.Fatalf("reparse %s: %v", body, err)
		}
		if !reflect.DeepEqual(*again, s.Identity) {
			t.Fatalf("round trip changed the identity:\n got %+v\nwant %+v", *again, s.Identity)
		}
		_, _ = s.Identity.Evaluate(QEReport{MRSIGNER: s.Identity.MRSIGNER, ISVProdID: s.Identity.ISVProdID, ISVSVN: 0xffff})
	})
}

// TestFuzzSeeds keeps the committed seeds meaningful: the good ones must
// parse, or the fuzzers would start from nothing but rejections.
func TestFuzzSeeds(t *testing.T) {
	parsers := map[string]func([]byte) error{
		"FuzzParseTCBInfo":    func(b []byte) error { _, err := ParseTCBInfo(b, nil); return err },
		"FuzzParseQEIdentity": func(b []byte) error { _, err := ParseQEIdentity(b, nil); return err },
	}
	for target, parse := range parsers {
		dir := filepath.Join("testdata", "fuzz", target)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 0 {
			t.Fatalf("no seeds for %s", target)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.SplitN(string(b), "\n", 3)
			if len(lines) < 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
				t.Fatalf("%s/%s: not a fuzz corpus file", target, e.Name())
			}
			doc, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
			if err != nil {
				t.Fatalf("%s/%s: %v", target, e.Name(), err)
			}
			err = parse([]byte(doc))
			if bad := strings.HasPrefix(e.Name(), "bad-"); bad != (err != nil) {
				t.Errorf("%s/%s: parse error %v", target, e.Name(), err)
			}
		}
	}
}
