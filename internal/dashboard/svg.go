package dashboard

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

// Charts are drawn on the server as inline SVG: no chart library, nothing to run in the browser,
// and every text in them goes through html.EscapeString.

const (
	chartW, chartH         = 360, 130
	padL, padR, padT, padB = 46, 10, 10, 22
)

// num formats a value for an axis or a tooltip.
func num(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// metricChart draws one metric's measurements against its threshold: a line of the values, a dot
// per measurement coloured by its verdict, and the threshold as a dashed line.
func metricChart(m v1.MetricResult) template.HTML {
	type pt struct {
		t     time.Time
		v     float64
		phase string
		msg   string
	}
	var pts []pt
	for _, ms := range m.Measurements {
		if ms.Value != nil && !math.IsNaN(*ms.Value) && !math.IsInf(*ms.Value, 0) {
			pts = append(pts, pt{ms.Time, *ms.Value, ms.Phase, ms.Message})
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`, chartW, chartH, chartW, chartH,
		html.EscapeString(m.Name+" measurements"))
	lo, hi := 0.0, 0.0
	for _, p := range pts {
		lo, hi = min(lo, p.v), max(hi, p.v)
	}
	if m.Threshold != nil {
		lo, hi = min(lo, *m.Threshold), max(hi, *m.Threshold)
	}
	if hi == lo {
		hi = lo + 1
	}
	hi += (hi - lo) * 0.1
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	y := func(v float64) float64 { return padT + plotH - (v-lo)/(hi-lo)*plotH }
	x := func(i int) float64 {
		if len(pts) < 2 {
			return padL + plotW/2
		}
		t0, t1 := pts[0].t, pts[len(pts)-1].t
		if !t1.After(t0) {
			return padL + plotW*float64(i)/float64(len(pts)-1)
		}
		return padL + plotW*float64(pts[i].t.Sub(t0))/float64(t1.Sub(t0))
	}
	// axes and labels
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, padL, padT, padL, chartH-padB)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, padL, chartH-padB, chartW-padR, chartH-padB)
	fmt.Fprintf(&b, `<text class="tick" x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-4, y(hi)+4, html.EscapeString(num(hi)))
	fmt.Fprintf(&b, `<text class="tick" x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-4, y(lo), html.EscapeString(num(lo)))
	if len(pts) > 0 {
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d">%s</text>`, padL, chartH-6, pts[0].t.UTC().Format("15:04:05"))
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d" text-anchor="end">%s</text>`, chartW-padR, chartH-6, pts[len(pts)-1].t.UTC().Format("15:04:05"))
	}
	if m.Threshold != nil {
		ty := y(*m.Threshold)
		fmt.Fprintf(&b, `<line class="threshold" x1="%d" y1="%.1f" x2="%d" y2="%.1f"><title>threshold %s</title></line>`, padL, ty, chartW-padR, ty, html.EscapeString(num(*m.Threshold)))
		fmt.Fprintf(&b, `<text class="tick threshold-label" x="%d" y="%.1f" text-anchor="end">threshold %s</text>`, chartW-padR-2, ty-3, html.EscapeString(num(*m.Threshold)))
	}
	if len(pts) > 1 {
		var line []string
		for i, p := range pts {
			line = append(line, fmt.Sprintf("%.1f,%.1f", x(i), y(p.v)))
		}
		fmt.Fprintf(&b, `<polyline class="series" points="%s"/>`, strings.Join(line, " "))
	}
	for i, p := range pts {
		tip := p.t.UTC().Format("15:04:05") + " " + num(p.v) + " " + p.phase
		if p.msg != "" {
			tip += ": " + p.msg
		}
		fmt.Fprintf(&b, `<circle class="m-%s" cx="%.1f" cy="%.1f" r="3"><title>%s</title></circle>`, html.EscapeString(p.phase), x(i), y(p.v), html.EscapeString(tip))
	}
	if len(pts) == 0 {
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d" text-anchor="middle">no numeric measurement yet</text>`, chartW/2, chartH/2)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text above was escaped
}

// deploymentsChart draws deployments (and failures above them) per bucket as bars.
func deploymentsChart(bs []v1.KPIBucket) template.HTML {
	var b strings.Builder
	w, h := 720, 160
	fmt.Fprintf(&b, `<svg class="chart wide" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="deployments and failures">`, w, h, w, h)
	top := 1
	for _, x := range bs {
		top = max(top, x.Deployments+x.Failures)
	}
	plotW, plotH := float64(w-padL-padR), float64(h-padT-padB)
	bw := plotW / float64(max(len(bs), 1))
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, padL, h-padB, w-padR, h-padB)
	fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d" text-anchor="end">%d</text>`, padL-4, padT+8, top)
	fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d" text-anchor="end">0</text>`, padL-4, h-padB)
	for i, x := range bs {
		x0 := float64(padL) + bw*float64(i)
		dh := plotH * float64(x.Deployments) / float64(top)
		fh := plotH * float64(x.Failures) / float64(top)
		label := x.Start.Format("2006-01-02 15:04")
		if dh > 0 {
			fmt.Fprintf(&b, `<rect class="bar-ok" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %d deployments</title></rect>`,
				x0+1, float64(h-padB)-dh, max(bw-2, 1), dh, label, x.Deployments)
		}
		if fh > 0 {
			fmt.Fprintf(&b, `<rect class="bar-fail" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %d failed or rolled back</title></rect>`,
				x0+1, float64(h-padB)-dh-fh, max(bw-2, 1), fh, label, x.Failures)
		}
	}
	if len(bs) > 0 {
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d">%s</text>`, padL, h-6, bs[0].Start.Format("Jan 2 15:04"))
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d" text-anchor="end">%s</text>`, w-padR, h-6, bs[len(bs)-1].Start.Format("Jan 2 15:04"))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// leadTimeChart draws the median lead time per bucket (hours) as dots joined by a line.
func leadTimeChart(bs []v1.KPIBucket) template.HTML {
	var b strings.Builder
	w, h := 720, 160
	fmt.Fprintf(&b, `<svg class="chart wide" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="lead time">`, w, h, w, h)
	top := 0.0
	for _, x := range bs {
		if x.LeadTimeSeconds != nil {
			top = max(top, *x.LeadTimeSeconds/3600)
		}
	}
	if top == 0 {
		top = 1
	}
	top *= 1.1
	plotW, plotH := float64(w-padL-padR), float64(h-padT-padB)
	bw := plotW / float64(max(len(bs), 1))
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, padL, h-padB, w-padR, h-padB)
	fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d" text-anchor="end">%sh</text>`, padL-4, padT+8, html.EscapeString(num(top)))
	fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d" text-anchor="end">0</text>`, padL-4, h-padB)
	var line []string
	for i, x := range bs {
		if x.LeadTimeSeconds == nil {
			continue
		}
		cx := float64(padL) + bw*(float64(i)+0.5)
		cy := float64(padT) + plotH - plotH*(*x.LeadTimeSeconds/3600)/top
		line = append(line, fmt.Sprintf("%.1f,%.1f", cx, cy))
		fmt.Fprintf(&b, `<circle class="m-Successful" cx="%.1f" cy="%.1f" r="3"><title>%s: median %s</title></circle>`, cx, cy,
			x.Start.Format("2006-01-02 15:04"), html.EscapeString(duration(*x.LeadTimeSeconds)))
	}
	if len(line) > 1 {
		fmt.Fprintf(&b, `<polyline class="series" points="%s"/>`, strings.Join(line, " "))
	}
	if len(line) == 0 {
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d" text-anchor="middle">no deployment in this period</text>`, w/2, h/2)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// duration formats seconds for people: 45s, 12m, 3h20m, 2d4h.
func duration(sec float64) string {
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String()
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}
