package main

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// One colour per system, the same in every picture.
var palette = map[string]color.Color{
	"mediagw":   color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"rtpengine": color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	"osmo-mgw":  color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
}

func colour(system string, i int) color.Color {
	if c, ok := palette[system]; ok {
		return c
	}
	others := []color.Color{color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff}}
	return others[i%len(others)]
}

// systemRuns is what one system's relay files hold.
type systemRuns struct {
	name     string
	ramp     []relayStep // ramp and refinement steps, by offered rate
	overload []relayStep // the 1.2x step on a fresh instance (and its recovery)
}

// readRelayRun finds the <system>-relay-*.txt files of a peers.sh run.
func readRelayRun(dir string) ([]systemRuns, error) {
	ramps, err := filepath.Glob(filepath.Join(dir, "*-relay-ramp.txt"))
	if err != nil {
		return nil, err
	}
	if len(ramps) == 0 {
		return nil, fmt.Errorf("%s: no *-relay-ramp.txt (a bench/peers.sh output folder?)", dir)
	}
	sort.Strings(ramps)
	var out []systemRuns
	for _, ramp := range ramps {
		name := strings.TrimSuffix(filepath.Base(ramp), "-relay-ramp.txt")
		s := systemRuns{name: name}
		for _, part := range []string{"ramp", "refine", "overload"} {
			f, err := os.Open(filepath.Join(dir, name+"-relay-"+part+".txt"))
			if errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				return nil, err
			}
			steps, err := parseRelay(f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", name, part, err)
			}
			if part == "overload" {
				s.overload = steps
				continue
			}
			for _, st := range steps {
				if st.label == "step" || st.label == "retry" { // not the warm-up
					s.ramp = append(s.ramp, st)
				}
			}
		}
		// A retried step keeps its last measurement; a refinement step
		// replaces a ramp step of the same rate.
		sort.SliceStable(s.ramp, func(i, j int) bool { return s.ramp[i].offered < s.ramp[j].offered })
		dedup := s.ramp[:0]
		for _, st := range s.ramp {
			if n := len(dedup); n > 0 && dedup[n-1].offered == st.offered {
				dedup[n-1] = st
				continue
			}
			dedup = append(dedup, st)
		}
		s.ramp = dedup
		if len(s.ramp) > 0 {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: the relay files hold no step lines", dir)
	}
	return out, nil
}

// plotRelay draws relay.png: loss (top) and p99 added latency (bottom)
// against the offered rate, per system; the ramp as lines, the 1.2x
// overload step on a fresh instance as a cross.
func plotRelay(dir, outDir string) ([]string, error) {
	systems, err := readRelayRun(dir)
	if err != nil {
		return nil, err
	}
	loss := newPlot("RTP relay: loss against offered rate", "offered (thousand packets/s)", "loss (%)")
	lat := newPlot("RTP relay: p99 added latency against offered rate", "offered (thousand packets/s)", "p99 latency (ms)")
	lat.Y.Scale = plot.LogScale{}
	lat.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	for i, s := range systems {
		c := colour(s.name, i)
		var lossXY, latXY, overLossXY, overLatXY plotter.XYs
		for _, st := range s.ramp {
			lossXY = append(lossXY, plotter.XY{X: st.offered / 1e3, Y: st.lossPct})
			latXY = append(latXY, plotter.XY{X: st.offered / 1e3, Y: math.Max(st.p99us/1e3, 0.01)})
		}
		for _, st := range s.overload {
			if st.label == "warmup" || st.label == "recover" {
				continue
			}
			overLossXY = append(overLossXY, plotter.XY{X: st.offered / 1e3, Y: st.lossPct})
			overLatXY = append(overLatXY, plotter.XY{X: st.offered / 1e3, Y: math.Max(st.p99us/1e3, 0.01)})
		}
		if err := addSeries(loss, s.name, c, lossXY, overLossXY); err != nil {
			return nil, err
		}
		if err := addSeries(lat, s.name, c, latXY, overLatXY); err != nil {
			return nil, err
		}
	}
	path := filepath.Join(outDir, "relay.png")
	return []string{path}, savePanels(path, 9*vg.Inch, 8*vg.Inch, loss, lat)
}

// addSeries adds a line with points, and the overload steps as crosses.
func addSeries(p *plot.Plot, name string, c color.Color, xy, over plotter.XYs) error {
	if len(xy) > 0 {
		l, pts, err := plotter.NewLinePoints(xy)
		if err != nil {
			return err
		}
		l.Color, pts.Color = c, c
		l.Width = vg.Points(1.5)
		pts.Shape = draw.CircleGlyph{}
		p.Add(l, pts)
		p.Legend.Add(name, l, pts)
	}
	if len(over) > 0 {
		sc, err := plotter.NewScatter(over)
		if err != nil {
			return err
		}
		sc.Color = c
		sc.Shape = draw.CrossGlyph{}
		sc.Radius = vg.Points(5)
		p.Add(sc)
		p.Legend.Add(name+" at 1.2x capacity", sc)
	}
	return nil
}

// plotConference draws conference.png: gateway CPU per member-second (top),
// late ticks (middle) and mixed-packet loss (bottom) against the number of
// legs, for the conferences and for the same-run ceilings when the file has
// them (relays through the gateway, phone to phone); failed steps in red.
func plotConference(file, outDir string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	modes, err := parseConference(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	if len(modes[modeConference]) == 0 {
		return nil, fmt.Errorf("%s: no conference step lines (bench/conference output?)", file)
	}
	cpu := newPlot("Gateway CPU per member-second", "legs", "CPU (µs per member-second)")
	late := newPlot("Conferences: late mixer ticks", "legs mixed", "late ticks (%)")
	loss := newPlot("Packets missing at the phones", "legs", "loss (%)")
	cpu.Y.Min, late.Y.Min, loss.Y.Min = 0, 0, 0
	series := []struct {
		mode, label string
		colour      color.Color
		cpu         bool // the gateway does the work (not loop)
	}{
		{modeConference, "conferences (mixed)", palette["mediagw"], true},
		{modeRelay, "relays, no mixing (ceiling)", color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, true},
		{modeLoop, "phone to phone, no gateway (generator ceiling)", color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}, false},
	}
	red := color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	failedShown := map[*plot.Plot]bool{}
	for _, sr := range series {
		steps := modes[sr.mode]
		if len(steps) == 0 {
			continue
		}
		var cpuXY, lateXY, lossXY, failCPU, failLate, failLoss plotter.XYs
		for _, s := range steps {
			x := float64(s.legs)
			cpuXY = append(cpuXY, plotter.XY{X: x, Y: s.cpuPerMemberSec})
			lateXY = append(lateXY, plotter.XY{X: x, Y: s.latePct})
			lossXY = append(lossXY, plotter.XY{X: x, Y: s.lossPct})
			if !s.pass {
				failCPU = append(failCPU, plotter.XY{X: x, Y: s.cpuPerMemberSec})
				failLate = append(failLate, plotter.XY{X: x, Y: s.latePct})
				failLoss = append(failLoss, plotter.XY{X: x, Y: s.lossPct})
			}
		}
		type panel struct {
			p         *plot.Plot
			all, fail plotter.XYs
		}
		panels := []panel{{loss, lossXY, failLoss}}
		if sr.cpu {
			panels = append(panels, panel{cpu, cpuXY, failCPU})
		}
		if sr.mode == modeConference {
			panels = append(panels, panel{late, lateXY, failLate})
		}
		for _, pn := range panels {
			l, pts, err := plotter.NewLinePoints(pn.all)
			if err != nil {
				return nil, err
			}
			l.Color, pts.Color = sr.colour, sr.colour
			pn.p.Add(l, pts)
			pn.p.Legend.Add(sr.label, l, pts)
			if len(pn.fail) > 0 {
				sc, err := plotter.NewScatter(pn.fail)
				if err != nil {
					return nil, err
				}
				sc.Color, sc.Shape, sc.Radius = red, draw.CrossGlyph{}, vg.Points(5)
				pn.p.Add(sc)
				if !failedShown[pn.p] {
					pn.p.Legend.Add("step failed", sc)
					failedShown[pn.p] = true
				}
			}
		}
	}
	path := filepath.Join(outDir, "conference.png")
	return []string{path}, savePanels(path, 9*vg.Inch, 11*vg.Inch, cpu, late, loss)
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	return p
}

// savePanels stacks plots vertically in one PNG.
func savePanels(path string, w, h vg.Length, plots ...*plot.Plot) error {
	img := vgimg.New(w, h)
	dc := draw.New(img)
	rows := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		rows[i] = []*plot.Plot{p}
	}
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align(rows, tiles, dc)
	for i := range rows {
		rows[i][0].Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
