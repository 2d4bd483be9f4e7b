package data

import (
	"fmt"
	"path/filepath"
)

// MappingDir is the folder, inside a data directory, holding the mapping CSVs.
const MappingDir = "client_data_mapping"

// Dataset is a training and a test split sharing classes and image size,
// and the pipeline that turns their images into model input.
type Dataset struct {
	Train, Test   *Split
	Classes       int // max label_id over both splits + 1
	Height, Width int // of every stored image; taken from the first training image
	// Pipeline is FedScale's for the data set (Open), or the grey
	// pipeline (Load).
	Pipeline *Pipeline
}

// Load opens the dataset in dataDir, in the FEMNIST layout, with the grey
// pipeline (images as stored, one channel in [0,1]); Open chooses by
// data_set. trainMap is the training mapping CSV
// (FedScale's data_map_file); "" means dataDir/client_data_mapping/train.csv.
// The test mapping is always dataDir/client_data_mapping/test.csv. The first
// training and test images are decoded eagerly so a size mismatch or a
// corrupt first image shows up at load time; the rest decode on demand.
func Load(dataDir, trainMap string) (*Dataset, error) {
	if err := checkDir(dataDir); err != nil {
		return nil, err
	}
	if trainMap == "" {
		trainMap = filepath.Join(dataDir, MappingDir, "train.csv")
	}
	train, err := LoadSplit(dataDir, trainMap)
	if err != nil {
		return nil, fmt.Errorf("training set: %w", err)
	}
	test, err := LoadSplit(dataDir, filepath.Join(dataDir, MappingDir, "test.csv"))
	if err != nil {
		return nil, fmt.Errorf("test set: %w", err)
	}
	h, w, err := train.Shape()
	if err != nil {
		return nil, fmt.Errorf("training set: %w", err)
	}
	test.setShape(h, w)
	if _, err := test.Image(0); err != nil {
		return nil, fmt.Errorf("test set: %w", err)
	}
	classes := 0
	for _, s := range []*Split{train, test} {
		for _, l := range s.Labels {
			classes = max(classes, int(l)+1)
		}
	}
	return &Dataset{Train: train, Test: test, Classes: classes, Height: h, Width: w, Pipeline: GreyPipeline("", h, w)}, nil
}
