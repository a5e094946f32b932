package render

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/reports"
)

// chart is a chart as shapes in points, origin at the top left: the HTML
// draws it as inline SVG and the PDF as vector paths, from the same
// geometry.
type chart struct {
	Title         string
	Width, Height float64
	Rects         []rect
	Lines         []line
	Labels        []label
}

type rect struct {
	X, Y, W, H float64
	Fill       string
	Title      string // what the shape stands for, shown as a tooltip
}

type line struct {
	X1, Y1, X2, Y2 float64
	Stroke         string
}

// label is text whose baseline starts (Anchor "start"), is centred
// ("middle") or ends ("end") at X, Y.
type label struct {
	X, Y   float64
	Text   string
	Anchor string
	Size   float64
	Fill   string
}

// Colours.
const (
	colourText  = "#1f2933"
	colourMuted = "#616e7c"
	colourGrid  = "#d9dee3"
	colourRed   = "#c0392b"
	colourAmber = "#d68910"
	colourGrey  = "#95a5a6"
	colourGreen = "#1e8449"
)

var stateColours = map[string]string{stateOpen: colourRed, stateWaived: colourAmber, stateSuppressed: colourGrey}

var decisions = []string{ci.Pass, ci.Fail, ci.Pending, ci.Unknown}

var decisionColours = map[string]string{ci.Pass: colourGreen, ci.Fail: colourRed, ci.Pending: colourAmber, ci.Unknown: colourGrey}

const (
	chartWidth = 500.0
	textSize   = 8.0
)

// category is one bar of a stacked bar chart: a count per series.
type category struct {
	Label  string
	Counts map[string]int
}

// stackedBars draws horizontal bars, one per category, each stacked from
// the series in order, with the category's total at its end and a legend
// below.
func stackedBars(title string, cats []category, series []string, colours map[string]string, empty string) *chart {
	const (
		left, right, top = 110.0, 40.0, 4.0
		barH, gap        = 14.0, 6.0
	)
	c := &chart{Title: title, Width: chartWidth}
	maxTotal := 0
	for _, cat := range cats {
		t := 0
		for _, n := range cat.Counts {
			t += n
		}
		maxTotal = max(maxTotal, t)
	}
	if maxTotal == 0 {
		c.Height = 30
		c.Labels = append(c.Labels, label{X: chartWidth / 2, Y: 18, Text: empty, Anchor: "middle", Size: textSize + 1, Fill: colourMuted})
		return c
	}
	scale := (chartWidth - left - right) / float64(maxTotal)
	y := top
	for _, cat := range cats {
		x, total := left, 0
		for _, s := range series {
			n := cat.Counts[s]
			if n == 0 {
				continue
			}
			c.Rects = append(c.Rects, rect{X: x, Y: y, W: float64(n) * scale, H: barH, Fill: colours[s],
				Title: cat.Label + ": " + strconv.Itoa(n) + " " + s})
			x += float64(n) * scale
			total += n
		}
		c.Labels = append(c.Labels,
			label{X: left - 6, Y: y + barH - 4, Text: cat.Label, Anchor: "end", Size: textSize, Fill: colourText},
			label{X: x + 4, Y: y + barH - 4, Text: strconv.Itoa(total), Anchor: "start", Size: textSize, Fill: colourText})
		y += barH + gap
	}
	c.Lines = append(c.Lines, line{X1: left, Y1: top - 2, X2: left, Y2: y - gap + 2, Stroke: colourMuted})
	c.Height = legend(c, y+6, series, colours)
	return c
}

// legend draws a swatch and a name per series from y and returns the
// chart's height below it.
func legend(c *chart, y float64, series []string, colours map[string]string) float64 {
	x := 110.0
	for _, s := range series {
		c.Rects = append(c.Rects, rect{X: x, Y: y, W: 8, H: 8, Fill: colours[s], Title: s})
		c.Labels = append(c.Labels, label{X: x + 11, Y: y + 7, Text: s, Anchor: "start", Size: textSize, Fill: colourText})
		x += 20 + float64(len(s))*4.6
	}
	return y + 14
}

// severityChart draws findings by severity (the rows of BySeverity
// without the total), stacked by state.
func severityChart(rows []countRow) *chart {
	cats := make([]category, len(rows))
	for i, r := range rows {
		cats[i] = category{Label: r.Label, Counts: map[string]int{stateOpen: r.Open, stateWaived: r.Waived, stateSuppressed: r.Suppressed}}
	}
	return stackedBars("Findings by severity", cats, states, stateColours, "No findings")
}

// ruleChart draws the rules with the most findings, stacked by state;
// the rest are one bar, "other rules".
func ruleChart(byRule map[string]map[string]int) *chart {
	var cats []category
	for r, counts := range byRule {
		cats = append(cats, category{Label: r, Counts: counts})
	}
	total := func(c category) int {
		t := 0
		for _, n := range c.Counts {
			t += n
		}
		return t
	}
	slices.SortFunc(cats, func(a, b category) int {
		return cmp.Or(-cmp.Compare(total(a), total(b)), cmp.Compare(a.Label, b.Label))
	})
	if len(cats) > maxRules {
		other := category{Label: strconv.Itoa(len(cats)-maxRules+1) + " other rules", Counts: map[string]int{}}
		for _, c := range cats[maxRules-1:] {
			for s, n := range c.Counts {
				other.Counts[s] += n
			}
		}
		cats = append(cats[:maxRules-1], other)
	}
	return stackedBars("Findings by rule", cats, states, stateColours, "No findings")
}

// historyChart draws the gate decisions of the historyDays days before
// end, a column per day stacked by decision.
func historyChart(points []reports.GatePoint, end time.Time) *chart {
	const (
		left, right, top, plotH = 30.0, 10.0, 6.0, 110.0
	)
	c := &chart{Title: "Gate decisions, last " + strconv.Itoa(historyDays) + " days", Width: chartWidth}
	days := make([]map[string]int, historyDays)
	start := end.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1-historyDays) // the first day shown, at midnight
	maxDay := 0
	for _, p := range points {
		d := int(math.Floor(p.At.Sub(start).Hours() / 24))
		if d < 0 || d >= historyDays || p.At.After(end) {
			continue
		}
		if days[d] == nil {
			days[d] = map[string]int{}
		}
		dec := p.Decision
		if decisionColours[dec] == "" {
			dec = ci.Unknown
		}
		days[d][dec]++
		t := 0
		for _, n := range days[d] {
			t += n
		}
		maxDay = max(maxDay, t)
	}
	if maxDay == 0 {
		c.Height = 30
		c.Labels = append(c.Labels, label{X: chartWidth / 2, Y: 18, Text: "No gate decisions in the last " + strconv.Itoa(historyDays) + " days", Anchor: "middle", Size: textSize + 1, Fill: colourMuted})
		return c
	}
	plotW := chartWidth - left - right
	colW := plotW / historyDays
	bottom := top + plotH
	for _, v := range []int{0, (maxDay + 1) / 2, maxDay} {
		y := bottom - float64(v)/float64(maxDay)*plotH
		c.Lines = append(c.Lines, line{X1: left, Y1: y, X2: left + plotW, Y2: y, Stroke: colourGrid})
		c.Labels = append(c.Labels, label{X: left - 4, Y: y + 3, Text: strconv.Itoa(v), Anchor: "end", Size: textSize - 1, Fill: colourMuted})
	}
	for d, counts := range days {
		x := left + float64(d)*colW
		y := bottom
		day := start.AddDate(0, 0, d).Format(time.DateOnly)
		for _, dec := range decisions {
			n := counts[dec]
			if n == 0 {
				continue
			}
			h := float64(n) / float64(maxDay) * plotH
			y -= h
			c.Rects = append(c.Rects, rect{X: x + colW*0.1, Y: y, W: colW * 0.8, H: h, Fill: decisionColours[dec],
				Title: day + ": " + strconv.Itoa(n) + " " + dec})
		}
		if d%15 == 0 || d == historyDays-1 {
			c.Lines = append(c.Lines, line{X1: x + colW/2, Y1: bottom, X2: x + colW/2, Y2: bottom + 3, Stroke: colourMuted})
			c.Labels = append(c.Labels, label{X: x + colW/2, Y: bottom + 12, Text: start.AddDate(0, 0, d).Format("2 Jan"), Anchor: "middle", Size: textSize - 1, Fill: colourMuted})
		}
	}
	c.Height = legend(c, bottom+20, decisions, decisionColours)
	return c
}
