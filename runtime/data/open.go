package data

import (
	"encoding/csv"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fedscale/fedscale-go/runtime/inputfile"
)

// Options selects and locates a job's data: job_conf's data keys.
type Options struct {
	DataSet string // job_conf.data_set: a name of DataSets(), or any name with Grey
	DataDir string // job_conf.data_dir
	MapFile string // job_conf.data_map_file; "" for none
	// Grey is job_conf.grey_input: the FEMNIST layout fed as stored (one
	// grey channel at the stored size, pixel/255, no augmentation), with
	// the clients of the mapping CSV, whatever DataSet says.
	Grey bool
	// Clients is the number of clients of FedScale's uniform partition,
	// made when there is no MapFile (FedScale passes num_participants).
	Clients int
}

// Open loads the data set a job names, with its pipeline. Its errors name
// the job_conf key at fault.
//
// Clients are FedScale's: with a data_map_file, FedScale's trace
// partition (a layout's map file names each client's samples; for CIFAR-10
// and the IDX data sets, row k of the map file gives sample k's client,
// since FedScale reads only the client_id column); without one, its
// uniform partition into o.Clients parts (UniformPartition). Only the grey
// pipeline keeps the layout's train.csv clients when no map file is given,
// as this runtime always has.
func Open(o Options) (*Dataset, error) {
	if o.Grey {
		ds, err := Load(o.DataDir, o.MapFile)
		if err != nil {
			return nil, fmt.Errorf("job_conf.data_dir: %w", err)
		}
		ds.Pipeline = GreyPipeline(o.DataSet, ds.Height, ds.Width)
		return ds, nil
	}
	p, err := PipelineFor(o.DataSet)
	if err != nil {
		return nil, fmt.Errorf("job_conf.data_set: %w", err)
	}
	var ds *Dataset
	switch p.Format {
	case FormatLayout:
		if ds, err = Load(o.DataDir, o.MapFile); err != nil {
			return nil, fmt.Errorf("job_conf.data_dir: %w", err)
		}
		if o.MapFile == "" {
			if err := uniformClients(ds.Train, o.Clients); err != nil {
				return nil, err
			}
		}
	case FormatCIFAR10, FormatIDX:
		var train, test *Split
		if p.Format == FormatCIFAR10 {
			train, test, err = LoadCIFAR10(o.DataDir)
		} else {
			train, test, err = loadIDXSplits(o.DataDir, p)
		}
		if err != nil {
			return nil, fmt.Errorf("job_conf.data_dir: %w", err)
		}
		if o.MapFile != "" {
			err = traceClients(train, o.MapFile)
		} else {
			err = uniformClients(train, o.Clients)
		}
		if err != nil {
			return nil, err
		}
		test.setClients([][]int32{allSamples(test.Len())}, []string{"test"})
		h, w, _ := train.Shape()
		ds = &Dataset{Train: train, Test: test, Height: h, Width: w}
		ds.Classes = maxLabel(train, test) + 1
	}
	ds.Pipeline = p
	if c := ds.Train.Channels(); c != 1 && c != p.Channels {
		return nil, fmt.Errorf("job_conf.data_dir %s: images have %d channels; %s takes %d", o.DataDir, c, o.DataSet, p.Channels)
	}
	return ds, nil
}

func maxLabel(splits ...*Split) int {
	m := -1
	for _, s := range splits {
		for _, l := range s.Labels {
			m = max(m, int(l))
		}
	}
	return m
}

func allSamples(n int) []int32 {
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(i)
	}
	return idx
}

// uniformClients gives s FedScale's uniform partition into clients parts,
// named "1".."clients" as FedScale numbers clients.
func uniformClients(s *Split, clients int) error {
	parts, err := UniformPartition(s.Len(), clients)
	if err != nil {
		return fmt.Errorf("job_conf.num_participants: %w", err)
	}
	names := make([]string, len(parts))
	for k := range names {
		names[k] = strconv.Itoa(k + 1)
	}
	s.setClients(parts, names)
	return nil
}

// traceClients is FedScale's trace_partition over an in-memory split: the
// map file's first line is a header, and row k (from 0) puts sample k with
// the client of its first column. Samples past the last row belong to no
// client.
func traceClients(s *Split, mapFile string) error {
	f, size, err := inputfile.Open(mapFile, MaxMapFileBytes)
	if err != nil {
		return fmt.Errorf("job_conf.data_map_file: %w", err)
	}
	defer f.Close()
	cr := csv.NewReader(io.LimitReader(f, size))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	if _, err := cr.Read(); err != nil {
		if err == io.EOF {
			return fmt.Errorf("job_conf.data_map_file %s: empty file", mapFile)
		}
		return fmt.Errorf("job_conf.data_map_file %s: %w", mapFile, err)
	}
	index := map[string]int{}
	var names []string
	var parts [][]int32
	for k := 0; ; k++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("job_conf.data_map_file %s: %w", mapFile, err)
		}
		line, _ := cr.FieldPos(0)
		if k >= s.Len() {
			return fmt.Errorf("job_conf.data_map_file %s:%d: more rows than the %d training samples", mapFile, line, s.Len())
		}
		id := strings.TrimSpace(rec[0])
		if id == "" {
			return fmt.Errorf("job_conf.data_map_file %s:%d: client_id is empty", mapFile, line)
		}
		c, ok := index[id]
		if !ok {
			c = len(names)
			index[id] = c
			names = append(names, id)
			parts = append(parts, nil)
		}
		parts[c] = append(parts[c], int32(k))
	}
	if len(parts) == 0 {
		return fmt.Errorf("job_conf.data_map_file %s: no rows after the header", mapFile)
	}
	s.setClients(parts, names)
	return nil
}

// newMemSplit makes a split of in-memory images: c planes of h x w bytes
// each, one image after another in pix, with their labels and the names
// that stand for their paths. No sample has a client yet.
func newMemSplit(dir, name string, pix []uint8, c, h, w int, labels []int32, paths []string) *Split {
	s := &Split{Dir: dir, MapFile: name, Paths: paths, Labels: labels, Clients: make([]int32, len(labels)),
		mem: pix, memC: c}
	for i := range s.Clients {
		s.Clients[i] = -1
	}
	s.hw.Store(uint64(h)<<32 | uint64(w))
	return s
}

// setClients replaces the split's clients: parts[k] are client k's
// samples, names[k] its client_id. A sample in no part gets client -1.
func (s *Split) setClients(parts [][]int32, names []string) {
	for i := range s.Clients {
		s.Clients[i] = -1
	}
	for k, p := range parts {
		for _, i := range p {
			s.Clients[i] = int32(k)
		}
	}
	s.ClientSamples, s.ClientNames = parts, names
}

// loadIDXSplits reads a torchvision MNIST-style folder,
// dataDir/<p.IDXFolder>/raw, as in-memory grey splits.
func loadIDXSplits(dataDir string, p *Pipeline) (train, test *Split, err error) {
	if err := checkDir(dataDir); err != nil {
		return nil, nil, err
	}
	dir := filepath.Join(dataDir, p.IDXFolder, "raw")
	src, err := findIDXNames(dir, p.IDXFiles)
	if err != nil {
		return nil, nil, fmt.Errorf("data_dir %s: %w (the folder torchvision.datasets.%s reads)", dataDir, err, p.IDXFolder)
	}
	trainPix, trainLabels, h, w, err := readIDXPair("training", src.TrainImages, src.TrainLabels, 0)
	if err != nil {
		return nil, nil, err
	}
	testPix, testLabels, th, tw, err := readIDXPair("test", src.TestImages, src.TestLabels, 0)
	if err != nil {
		return nil, nil, err
	}
	if th != h || tw != w {
		return nil, nil, fmt.Errorf("data_dir %s: test images are %dx%d but training images %dx%d", dataDir, tw, th, w, h)
	}
	mk := func(file string, pix, labels []uint8) *Split {
		l := make([]int32, len(labels))
		for i, v := range labels {
			l[i] = int32(v)
		}
		return newMemSplit(dir, filepath.Join(dir, file), pix, 1, h, w, l, appendSamplePaths(nil, file, len(l)))
	}
	return mk(filepath.Base(src.TrainImages), trainPix, trainLabels), mk(filepath.Base(src.TestImages), testPix, testLabels), nil
}

// Input is the model input the dataset's pipeline makes: channels, height
// and width.
func (d *Dataset) Input() (c, h, w int) {
	p := d.Pipe()
	return p.Channels, p.Height, p.Width
}

// ModelClasses is the model's output size: FedScale's class count for the
// data set, or the labels' (max + 1) under the grey pipeline.
func (d *Dataset) ModelClasses() int {
	if p := d.Pipe(); p.Classes > 0 {
		return p.Classes
	}
	return d.Classes
}

// Pipe returns the dataset's pipeline: d.Pipeline, or for a Dataset built
// by hand without one, the grey pipeline at the stored size.
func (d *Dataset) Pipe() *Pipeline {
	if d.Pipeline != nil {
		return d.Pipeline
	}
	return GreyPipeline("", d.Height, d.Width)
}
