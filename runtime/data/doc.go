// Package data reads and writes datasets in the FedScale FEMNIST layout and
// converts MNIST-style IDX files into it; it reads torchvision's CIFAR-10
// folder (and MNIST/EMNIST raw folders) and writes CIFAR-10 folders; and it
// turns samples into model input the way FedScale does for each data_set
// (pipeline.go: a table of FedScale's transforms, with Pillow's bilinear
// resize reproduced bit for bit in resize.go), partitioning clients as
// FedScale's DataPartitioner does (pyrandom.go).
//
// The layout is a data directory holding client_data_mapping/train.csv and
// client_data_mapping/test.csv (header client_id,sample_path,label_name,label_id)
// plus the PNG images those rows name, relative to the data directory. Loading
// validates the mapping eagerly (every row parsed, every image present) but
// decodes images lazily, keeping them as 8-bit grey pixels, because a runtime
// executor usually touches only the clients it is assigned.
//
// Writing (WriteLayout) exists so that the fsdata command and other packages'
// tests can produce datasets in the same layout; IDX reading and the Dirichlet
// partitioner turn MNIST or Fashion-MNIST into a non-IID federated dataset.
//
// Nothing in this package touches the network or model code: it only knows
// files, pixels, labels, clients and the float32 input a model is fed.
package data
