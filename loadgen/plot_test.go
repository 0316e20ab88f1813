package loadgen

import (
	"bytes"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestWriteSVGGolden draws a fixed series and compares it with
// testdata/plot.golden.svg (go test ./loadgen -run TestWriteSVGGolden
// -update rewrites it; look at it before committing).
func TestWriteSVGGolden(t *testing.T) {
	pts := []Point{
		{T: 1, PerSec: 800, P50: 12, P99: 30},
		{T: 2, PerSec: 1450, P50: 15, P99: 48.5},
		{T: 3, PerSec: 1500, P50: 16, P99: 61},
		{T: 4, PerSec: 1200, P50: 22, P99: 140},
		{T: 5, PerSec: 300, P50: 9, P99: 20},
	}
	var buf bytes.Buffer
	if err := WriteSVG(&buf, "load direct <1 worker> & co", pts); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML whatever the title.
	d := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
	}
	golden := filepath.Join("testdata", "plot.golden.svg")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("SVG differs from %s (rerun with -update and inspect):\n%s", golden, buf.String())
	}
}

func TestSeries(t *testing.T) {
	ms := time.Millisecond
	cs := []completion{{50 * ms, 10 * ms}, {90 * ms, 30 * ms}, {150 * ms, 20 * ms}, {399 * ms, 5 * ms}}
	got := series(cs, 400*ms)
	want := []Point{{0.1, 20, 10, 30}, {0.2, 10, 20, 20}, {0.3, 0, 0, 0}, {0.4, 10, 5, 5}}
	if len(got) != len(want) {
		t.Fatalf("series %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("point %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// A long run keeps at most maxPoints points, of whole 100 ms steps.
	long := series([]completion{{time.Minute, ms}}, 10*time.Minute)
	if len(long) > maxPoints || len(long) == 0 || long[0].T != 10 {
		t.Errorf("10 min: %d points, first ends at %v s", len(long), long[0].T)
	}
	if series(nil, time.Second) != nil {
		t.Error("no completions: a series")
	}
}
