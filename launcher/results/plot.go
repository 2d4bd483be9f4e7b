package results

import (
	"fmt"
	"image/color"
	"io"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/fedscale/fedscale-go/runtime/fedlog"
)

// The plot's size: two panels, accuracy over loss, sharing the round axis.
const (
	PlotWidth  = 8 * vg.Inch
	PlotHeight = 6 * vg.Inch
	// PlotDPI is the PNG's resolution: PlotWidth x PlotHeight at it is
	// 768 x 576 pixels.
	PlotDPI = 96
)

// PlotFormat is the plot's format from path's extension: "png" or "svg".
func PlotFormat(path string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".png", ".svg":
		return ext[1:], nil
	}
	return "", fmt.Errorf("--plot %s: want a .png or .svg file", path)
}

// Series is one curve: its legend name and its points (round, value).
type Series struct {
	Name   string
	Points plotter.XYs
}

// Panels are the plot's data: the accuracy panel's series and the loss
// panel's, each leaving out the rounds that lack the value.
func Panels(recs []fedlog.Record) (accuracy, loss []Series) {
	pick := func(name string, v func(fedlog.Record) *float64) Series {
		s := Series{Name: name}
		for _, r := range recs {
			if p := v(r); p != nil {
				s.Points = append(s.Points, plotter.XY{X: float64(r.Round), Y: *p})
			}
		}
		return s
	}
	accuracy = []Series{
		pick("top-1", func(r fedlog.Record) *float64 { return r.Top1 }),
		pick("top-5", func(r fedlog.Record) *float64 { return r.Top5 }),
	}
	loss = []Series{
		pick("training loss", func(r fedlog.Record) *float64 { return r.Loss }),
		pick("test loss", func(r fedlog.Record) *float64 { return r.TestLoss }),
	}
	return accuracy, loss
}

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
}

// panel is one plot of series against the round.
func panel(title, ylabel string, series []Series, rounds int) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "round"
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	for i, s := range series {
		if len(s.Points) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(s.Points)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		c := palette[i%len(palette)]
		l.Color, pts.Color = c, c
		pts.Shape = draw.CircleGlyph{}
		pts.Radius = vg.Points(2)
		p.Add(l, pts)
		p.Legend.Add(s.Name, l, pts)
	}
	p.X.Min = 0
	if rounds > 0 && float64(rounds) > p.X.Max {
		p.X.Max = float64(rounds)
	}
	return p, nil
}

// Plot draws res as format ("png" or "svg") to w: top-1 and top-5
// accuracy over the training and test loss, against the round.
func Plot(w io.Writer, format string, res Results) error {
	if len(res.Records) == 0 {
		return ErrNoRounds
	}
	acc, loss := Panels(res.Records)
	top, err := panel(fmt.Sprintf("%s: test accuracy", res.Job), "accuracy", acc, res.Rounds)
	if err != nil {
		return err
	}
	top.Y.Min, top.Y.Max = 0, 1
	bottom, err := panel(fmt.Sprintf("%s: loss", res.Job), "loss", loss, res.Rounds)
	if err != nil {
		return err
	}
	bottom.Y.Min = 0
	bottom.X.Min, bottom.X.Max = top.X.Min, max(top.X.Max, bottom.X.Max)
	top.X.Max = bottom.X.Max

	var c draw.Canvas
	var out io.WriterTo
	switch format {
	case "png":
		img := vgimg.NewWith(vgimg.UseWH(PlotWidth, PlotHeight), vgimg.UseDPI(PlotDPI))
		c, out = draw.New(img), vgimg.PngCanvas{Canvas: img}
	case "svg":
		svg := vgsvg.New(PlotWidth, PlotHeight)
		c, out = draw.New(svg), svg
	default:
		return fmt.Errorf("plot format %q: want png or svg", format)
	}
	plots := [][]*plot.Plot{{top}, {bottom}}
	canvases := plot.Align(plots, draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}, c)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	_, err = out.WriteTo(w)
	return err
}
