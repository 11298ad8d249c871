package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// A small hand-written SVG line chart: enough for throughput and latency
// over time, with no plotting dependency.

// line is one series of a chart.
type line struct {
	Name   string
	Color  string
	Dashed bool
	X, Y   []float64
}

// chart is a line chart's layout.
type chart struct {
	Title, XLabel, YLabel string
	Lines                 []line
	// XTicks, when set, labels x values (for example UTC times); else
	// numbers.
	XTick func(x float64) string
	// Markers are vertical lines with a label (midnights).
	Markers []marker
	YMin    float64 // usually 0
}

type marker struct {
	X     float64
	Label string
}

// Palette: distinguishable, and readable on white and on GitHub's dark
// theme.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"}

const (
	chartW, chartH                       = 760, 340
	padLeft, padRight, padTop, padBottom = 70, 150, 36, 48
)

// niceStep returns a round tick step for a span divided in about n parts.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 1000:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", v), "0"), ".")
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

// svg renders the chart.
func (c chart) svg() string {
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := c.YMin, math.Inf(-1)
	for _, l := range c.Lines {
		for i := range l.X {
			xmin, xmax = math.Min(xmin, l.X[i]), math.Max(xmax, l.X[i])
			ymax = math.Max(ymax, l.Y[i])
		}
	}
	if math.IsInf(xmin, 0) {
		xmin, xmax, ymax = 0, 1, 1
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	if ymax <= ymin {
		ymax = ymin + 1
	}
	ystep := niceStep(ymax-ymin, 5)
	ymax = math.Ceil(ymax/ystep) * ystep
	pw, ph := float64(chartW-padLeft-padRight), float64(chartH-padTop-padBottom)
	px := func(x float64) float64 { return padLeft + (x-xmin)/(xmax-xmin)*pw }
	py := func(y float64) float64 { return padTop + ph - (y-ymin)/(ymax-ymin)*ph }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", padLeft, html.EscapeString(c.Title))
	// Grid and y ticks.
	for y := ymin; y <= ymax+ystep/1e6; y += ystep {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", padLeft, py(y), padLeft+pw, py(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padLeft-6, py(y)+4, fmtNum(y))
	}
	// x ticks.
	xstep := niceStep(xmax-xmin, 8)
	if c.XTick != nil {
		// Times: a whole number of 15 minutes.
		xstep = math.Max(900, math.Ceil((xmax-xmin)/8/900)*900)
	}
	for x := math.Ceil(xmin/xstep) * xstep; x <= xmax+xstep/1e6; x += xstep {
		label := fmtNum(x)
		if c.XTick != nil {
			label = c.XTick(x)
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`+"\n", px(x), padTop+ph, px(x), padTop+ph+4)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", px(x), padTop+ph+16, html.EscapeString(label))
	}
	for _, m := range c.Markers {
		if m.X < xmin || m.X > xmax {
			continue
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#bbb" stroke-dasharray="2,3"/>`+"\n", px(m.X), padTop, px(m.X), padTop+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="9" text-anchor="middle" fill="#666">%s</text>`+"\n", px(m.X), padTop-4, html.EscapeString(m.Label))
	}
	// Axes.
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%.1f" stroke="#333"/>`+"\n", padLeft, padTop, padLeft, padTop+ph)
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n", padLeft, padTop+ph, padLeft+pw, padTop+ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", padLeft+pw/2, chartH-10, html.EscapeString(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", padTop+ph/2, html.EscapeString(c.YLabel))
	// Lines and legend.
	for i, l := range c.Lines {
		color := l.Color
		if color == "" {
			color = palette[i%len(palette)]
		}
		var pts strings.Builder
		for j := range l.X {
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(l.X[j]), py(math.Min(l.Y[j], ymax)))
		}
		dash := ""
		if l.Dashed {
			dash = ` stroke-dasharray="5,3"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5"%s points="%s"/>`+"\n", color, dash, strings.TrimSpace(pts.String()))
		ly := padTop + 10 + i*16
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", padLeft+pw+12, ly, padLeft+pw+32, ly, color, dash)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", padLeft+pw+36, ly+4, html.EscapeString(l.Name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}
