package render

import (
	"bytes"
	_ "embed"
	"html/template"
	"io"
	"math"
	"strconv"

	"github.com/vigil-sec/vigil/reports"
)

//go:embed summary.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("summary.html").Funcs(template.FuncMap{
	"num": func(f float64) string { return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64) },
}).Parse(htmlSource))

// watermarkRows is how many times the watermark is repeated down a
// screen or printed page.
const watermarkRows = 4

// HTML writes the release's summary for the recipient as one
// self-contained HTML file: inline CSS and SVG, no script, nothing
// fetched.
func HTML(w io.Writer, rel *reports.Release, to reports.Recipient, opts *Options) error {
	s, err := summarize(rel, to, opts)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := htmlTemplate.Execute(&buf, struct {
		*summary
		WatermarkRows []struct{}
	}{s, make([]struct{}, watermarkRows)}); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}
