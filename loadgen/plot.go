package loadgen

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Point is one interval of a run: the calls that completed in it per
// second, and their latency.
type Point struct {
	// T is the end of the interval, in seconds from the start of the
	// timed phase.
	T      float64 `json:"t"`
	PerSec float64 `json:"per_sec"`
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
}

// maxPoints bounds a series: a plot of a long run stays readable.
const maxPoints = 60

// completion is one call done at at (from the start) with latency lat.
type completion struct{ at, lat time.Duration }

// series bins completions into at most maxPoints intervals of a whole
// number of 100 ms, up to end.
func series(cs []completion, end time.Duration) []Point {
	if len(cs) == 0 || end <= 0 {
		return nil
	}
	step := 100 * time.Millisecond
	for end > step*maxPoints {
		step += 100 * time.Millisecond
	}
	n := int((end + step - 1) / step)
	bins := make([][]time.Duration, n)
	for _, c := range cs {
		i := min(max(int(c.at/step), 0), n-1)
		bins[i] = append(bins[i], c.lat)
	}
	pts := make([]Point, n)
	for i, b := range bins {
		l := percentiles(b)
		pts[i] = Point{T: (time.Duration(i+1) * step).Seconds(), PerSec: float64(len(b)) / step.Seconds(), P50: l.P50, P99: l.P99}
	}
	return pts
}

// WriteSVG draws a run's series: calls/s above, p50 and p99 latency
// below, over time. The SVG is plain (no scripts, no external
// references) and the same for the same series.
func WriteSVG(w io.Writer, title string, pts []Point) error {
	const (
		width, left, right = 720, 70, 20
		panel, top, gap    = 150, 40, 50
		height             = top + 2*panel + gap + 40
	)
	plotW := float64(width - left - right)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">%s</text>`+"\n", left, xmlEscape(title))
	tMax := 0.0
	if len(pts) > 0 {
		tMax = pts[len(pts)-1].T
	}
	x := func(t float64) float64 {
		if tMax == 0 {
			return left
		}
		return left + t/tMax*plotW
	}
	type line struct {
		name, color string
		v           func(Point) float64
	}
	drawPanel := func(y0 int, label string, lines []line) {
		yMax := 0.0
		for _, p := range pts {
			for _, l := range lines {
				yMax = math.Max(yMax, l.v(p))
			}
		}
		yMax = niceCeil(yMax)
		y := func(v float64) float64 { return float64(y0+panel) - v/yMax*panel }
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%d" fill="none" stroke="#999"/>`+"\n", left, y0, plotW, panel)
		for _, f := range []float64{0, 0.5, 1} {
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(f*yMax)+4, fmtNum(f*yMax))
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", left, y0-6, xmlEscape(label))
		for i, l := range lines {
			var pp []string
			for _, p := range pts {
				pp = append(pp, fmt.Sprintf("%.1f,%.1f", x(p.T), y(l.v(p))))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", l.color, strings.Join(pp, " "))
			fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s" text-anchor="end">%s</text>`+"\n", width-right-60*i, y0-6, l.color, l.name)
		}
	}
	drawPanel(top, "calls/s completed", []line{{"calls/s", "#1f77b4", func(p Point) float64 { return p.PerSec }}})
	drawPanel(top+panel+gap, "latency (ms)", []line{
		{"p99", "#d62728", func(p Point) float64 { return p.P99 }},
		{"p50", "#2ca02c", func(p Point) float64 { return p.P50 }},
	})
	axisY := top + 2*panel + gap
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(f*tMax), axisY+16, fmtNum(f*tMax))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">seconds</text>`+"\n", left+plotW/2, axisY+32)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for 0).
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
