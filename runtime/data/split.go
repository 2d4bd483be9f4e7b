package data

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fedscale/fedscale-go/runtime/inputfile"
)

// MapHeader is the header line of a client data mapping CSV.
var MapHeader = []string{"client_id", "sample_path", "label_name", "label_id"}

// MaxLabel is the largest label_id accepted. Classes is max label + 1 and
// models allocate per class, so an absurd label is rejected at load time
// rather than turning into an enormous allocation later.
const MaxLabel = 1<<20 - 1

// MaxMapFileBytes bounds a client data mapping CSV. FEMNIST's train
// mapping, the largest FedScale ships for the supported data sets, is
// about 40 MB; the bound keeps a device or FIFO named by mistake from
// being read without end.
const MaxMapFileBytes = 1 << 30

// Split is one client data mapping (train or test) and the images it names.
// The exported slices are filled by LoadSplit and must not be modified.
type Split struct {
	Dir     string // the data directory sample paths are relative to
	MapFile string // the mapping CSV, as given to LoadSplit

	Paths   []string // per sample, relative to Dir, slash-separated as in the CSV
	Labels  []int32  // per sample: label_id
	Clients []int32  // per sample: client index; -1 for a sample of no client

	ClientNames   []string  // original client_id strings; index = client index
	ClientSamples [][]int32 // per client: its sample indices, in file order

	// cache holds decoded pixels per sample; nil until first decoded.
	cache []atomic.Pointer[[]uint8]
	// budget, when set, bounds the bytes the cache may hold; images past
	// it are decoded on every use instead of being kept.
	budget *CacheBudget
	// mem, when set, holds every image in memory, memC*h*w bytes each,
	// channel after channel: data sets read whole (CIFAR-10, IDX files)
	// rather than from one PNG file per sample.
	mem  []uint8
	memC int
	// hw packs the expected image size (h<<32 | w); 0 until known.
	hw atomic.Uint64
	mu sync.Mutex // serialises establishing hw
}

// Len returns the number of samples.
func (s *Split) Len() int { return len(s.Paths) }

// NumClients returns the number of distinct clients.
func (s *Split) NumClients() int { return len(s.ClientNames) }

// LoadSplit reads the mapping CSV mapFile (a path, not relative to dataDir)
// whose sample paths are relative to dataDir. It validates every row and
// checks that every image exists as a regular file, but decodes nothing.
func LoadSplit(dataDir, mapFile string) (*Split, error) {
	if err := checkDir(dataDir); err != nil {
		return nil, err
	}
	f, size, err := inputfile.Open(mapFile, MaxMapFileBytes)
	if err != nil {
		return nil, fmt.Errorf("client data mapping: %w", err)
	}
	defer f.Close()

	s := &Split{Dir: dataDir, MapFile: mapFile}
	lines, err := s.parse(io.LimitReader(f, size))
	if err != nil {
		return nil, err
	}
	if err := s.statImages(lines); err != nil {
		return nil, err
	}
	s.cache = make([]atomic.Pointer[[]uint8], len(s.Paths))
	return s, nil
}

func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("data_dir %s: no such directory", dir)
	}
	if err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data_dir %s: not a directory", dir)
	}
	return nil
}

// parse reads the CSV rows into s and returns each sample's line number in
// the file, for error messages from later checks.
func (s *Split) parse(r io.Reader) ([]int, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // we check field counts ourselves, with better messages
	cr.ReuseRecord = true
	name := s.MapFile

	hdr, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file, expected header %s", name, strings.Join(MapHeader, ","))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if !isHeader(hdr) {
		return nil, fmt.Errorf("%s:1: header %q, expected %s", name, strings.Join(hdr, ","), strings.Join(MapHeader, ","))
	}

	clientIndex := map[string]int32{}
	var lines []int
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// csv.ParseError already carries the line number.
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(MapHeader) {
			return nil, fmt.Errorf("%s:%d: %d fields, expected %d (%s)", name, line, len(rec), len(MapHeader), strings.Join(MapHeader, ","))
		}
		client, path, labelStr := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1]), strings.TrimSpace(rec[3])
		if client == "" {
			return nil, fmt.Errorf("%s:%d: client_id is empty", name, line)
		}
		if path == "" {
			return nil, fmt.Errorf("%s:%d: sample_path is empty", name, line)
		}
		// Samples are files under the data directory: a mapping file must
		// not make the loader read (or reveal the existence of) any other.
		if !filepath.IsLocal(filepath.FromSlash(path)) {
			return nil, fmt.Errorf("%s:%d: sample_path %q is outside data_dir (absolute, or leaving it through ..)", name, line, path)
		}
		label, err := strconv.ParseInt(labelStr, 10, 32)
		if err != nil || label < 0 {
			return nil, fmt.Errorf("%s:%d: label_id %q: expected a non-negative integer", name, line, labelStr)
		}
		if label > MaxLabel {
			return nil, fmt.Errorf("%s:%d: label_id %d: larger than the maximum %d", name, line, label, MaxLabel)
		}
		ci, ok := clientIndex[client]
		if !ok {
			ci = int32(len(s.ClientNames))
			clientIndex[client] = ci
			s.ClientNames = append(s.ClientNames, client)
			s.ClientSamples = append(s.ClientSamples, nil)
		}
		idx := int32(len(s.Paths)) // MaxMapFileBytes keeps the rows (7+ bytes each) below 2^31
		s.Paths = append(s.Paths, path)
		s.Labels = append(s.Labels, int32(label))
		s.Clients = append(s.Clients, ci)
		s.ClientSamples[ci] = append(s.ClientSamples[ci], idx)
		lines = append(lines, line)
	}
	if len(s.Paths) == 0 {
		return nil, fmt.Errorf("%s: no samples (only a header)", name)
	}
	return lines, nil
}

func isHeader(rec []string) bool {
	if len(rec) != len(MapHeader) {
		return false
	}
	for i, h := range MapHeader {
		f := strings.TrimSpace(rec[i])
		if i == 0 {
			f = strings.TrimPrefix(f, "\ufeff") // files saved by spreadsheet tools
		}
		if f != h {
			return false
		}
	}
	return true
}

// statImages checks that every sample's image is a regular file. Stats run
// on several goroutines because on a cold disk each one waits on I/O; the
// error reported is the first in file order, so messages are deterministic.
func (s *Split) statImages(lines []int) error {
	n := len(s.Paths)
	errs := make([]error, n)
	check := func(i int) {
		fi, err := os.Stat(s.abs(i))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			errs[i] = fmt.Errorf("%s:%d: image %s: no such file", s.MapFile, lines[i], s.Paths[i])
		case err != nil:
			errs[i] = fmt.Errorf("%s:%d: image %s: %w", s.MapFile, lines[i], s.Paths[i], err)
		case !fi.Mode().IsRegular():
			errs[i] = fmt.Errorf("%s:%d: image %s: not a regular file", s.MapFile, lines[i], s.Paths[i])
		}
	}
	parallelFor(n, ioWorkers(), check)
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ioWorkers is the goroutine count for file-bound loops. It exceeds
// GOMAXPROCS on purpose: on a cold page cache each goroutine mostly waits in
// a blocking syscall, and more reads in flight keep the disk busy, while CPU
// use stays bounded by GOMAXPROCS.
func ioWorkers() int { return max(16, runtime.GOMAXPROCS(0)) }

// parallelFor calls fn(i) for i in [0,n) on up to workers goroutines, handing
// out indices in chunks to keep the synchronisation cheap.
func parallelFor(n, workers int, fn func(i int)) {
	const chunk = 256
	if n <= chunk || workers <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				start := int(next.Add(chunk)) - chunk
				if start >= n {
					return
				}
				for i := start; i < min(start+chunk, n); i++ {
					fn(i)
				}
			}
		}()
	}
	wg.Wait()
}

func (s *Split) abs(i int) string {
	return filepath.Join(s.Dir, filepath.FromSlash(s.Paths[i]))
}

// Shape returns the height and width every image of the split must have. It
// is the size set by Load (the first training image's) or, for a split
// loaded alone, the size of the split's first image, decoded on demand.
func (s *Split) Shape() (h, w int, err error) {
	if hw := s.hw.Load(); hw != 0 {
		return int(hw >> 32), int(hw & 0xffffffff), nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if hw := s.hw.Load(); hw != 0 {
		return int(hw >> 32), int(hw & 0xffffffff), nil
	}
	if len(s.Paths) == 0 {
		return 0, 0, errors.New("split has no samples")
	}
	if err := s.checkLoaded(); err != nil {
		return 0, 0, err
	}
	pix, w, h, err := s.decode(0, 0, 0, nil)
	if err != nil {
		return 0, 0, err
	}
	s.cache[0].CompareAndSwap(nil, &pix)
	s.hw.Store(uint64(h)<<32 | uint64(w))
	return h, w, nil
}

// Channels is the number of channels of the stored images: 1 (grey) for
// PNG layouts, 3 for CIFAR-10.
func (s *Split) Channels() int {
	if s.mem != nil {
		return s.memC
	}
	return 1
}

// checkLoaded guards against a Split built by hand rather than by LoadSplit,
// whose image cache would not match its samples.
func (s *Split) checkLoaded() error {
	if s.mem != nil {
		return nil
	}
	if len(s.cache) != len(s.Paths) {
		return fmt.Errorf("split %s was not created by LoadSplit", s.MapFile)
	}
	return nil
}

// setShape fixes the expected image size before any image is decoded.
func (s *Split) setShape(h, w int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hw.Store(uint64(h)<<32 | uint64(w))
}

// Image returns sample i's pixels: Height*Width grey values, row-major
// (Channels() planes of them for an in-memory split). The
// image is decoded on first use and cached; the returned slice is shared and
// must not be modified. Safe for concurrent use.
func (s *Split) Image(i int) ([]uint8, error) {
	pix, _, err := s.image(i, nil)
	return pix, err
}

// image is Image for callers that only read the pixels briefly. An image
// the cache budget cannot keep is decoded into scratch when its capacity
// suffices; kept is false then and the result (which the caller may reuse
// as the next scratch) is the caller's. Past the budget this makes
// decoding allocation-free, where Image allocates each image.
func (s *Split) image(i int, scratch []uint8) (pix []uint8, kept bool, err error) {
	if i < 0 || i >= len(s.Paths) {
		return nil, false, fmt.Errorf("%s: sample %d out of range [0,%d)", s.MapFile, i, len(s.Paths))
	}
	if err := s.checkLoaded(); err != nil {
		return nil, false, err
	}
	if s.mem != nil {
		hw := s.hw.Load()
		n := s.memC * int(hw>>32) * int(hw&0xffffffff)
		return s.mem[i*n : (i+1)*n : (i+1)*n], true, nil
	}
	if p := s.cache[i].Load(); p != nil {
		return *p, true, nil
	}
	h, w, err := s.Shape()
	if err != nil {
		return nil, false, err
	}
	if p := s.cache[i].Load(); p != nil { // Shape may have just decoded it
		return *p, true, nil
	}
	// The size is known before decoding, so the budget is reserved first:
	// an image that will not be kept can then go into scratch.
	n := int64(h * w)
	if !s.budget.take(n) {
		pix, _, _, err := s.decode(i, h, w, scratch)
		return pix, false, err
	}
	pix, _, _, err = s.decode(i, h, w, nil)
	if err != nil {
		s.budget.give(n)
		return nil, false, err
	}
	// Two goroutines may decode the same image at once; both results are
	// identical, and the first stored wins so every caller shares one copy.
	if !s.cache[i].CompareAndSwap(nil, &pix) {
		s.budget.give(n)
		return *s.cache[i].Load(), true, nil
	}
	return pix, true, nil
}

// CacheBudget is a bound on decoded-image memory that splits can share.
type CacheBudget struct{ left atomic.Int64 }

// NewCacheBudget returns a budget of n bytes.
func NewCacheBudget(n int64) *CacheBudget {
	b := &CacheBudget{}
	b.left.Store(n)
	return b
}

// take reserves n bytes; false when the budget is spent. A nil budget is
// unlimited.
func (b *CacheBudget) take(n int64) bool {
	if b == nil {
		return true
	}
	if b.left.Add(-n) < 0 {
		b.left.Add(n)
		return false
	}
	return true
}

// give returns n bytes taken but not used.
func (b *CacheBudget) give(n int64) {
	if b != nil {
		b.left.Add(n)
	}
}

// SetCacheBudget bounds the decoded images this split keeps in memory.
// Images decoded once the budget is spent are not kept, so memory stays
// bounded on data sets far larger than RAM at the price of decoding them
// again on each use. Call it before the first Image.
func (s *Split) SetCacheBudget(b *CacheBudget) { s.budget = b }

// decode reads and decodes sample i. When h and w are non-zero the image
// must have that size; the header is checked before decoding the pixels.
// The pixels go into dst when its capacity is at least w*h.
//
// The file is read into a pooled buffer and common PNGs take the fast
// decoder, so in steady state this allocates little beyond the pixels
// (nothing for them given dst). Files the fast decoder does not accept go
// through image/png as before, which produces the error messages.
func (s *Split) decode(i, h, w int, dst []uint8) ([]uint8, int, int, error) {
	bp, err := readFilePooled(s.abs(i))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("image %s: %w", s.abs(i), err)
	}
	defer putFileBuf(bp)
	b := *bp
	var hd pngHeader
	fast := parsePNGHeader(b, &hd)
	gw, gh := hd.w, hd.h
	if !fast {
		if gw, gh, err = pngSize(b); err != nil {
			return nil, 0, 0, fmt.Errorf("image %s: corrupt PNG: %w", s.abs(i), err)
		}
	}
	if h != 0 && (gw != w || gh != h) {
		return nil, 0, 0, fmt.Errorf("image %s: %dx%d, expected %dx%d like the rest of the dataset", s.abs(i), gw, gh, w, h)
	}
	if gw <= 0 || gh <= 0 || gw*gh > maxPixels {
		return nil, 0, 0, fmt.Errorf("image %s: implausible size %dx%d", s.abs(i), gw, gh)
	}
	if fast {
		if pix, ok := hd.decode(dst, b); ok {
			return pix, gw, gh, nil
		}
	}
	pix, gw, gh, err := decodeGraySlow(dst, b)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("image %s: corrupt PNG: %w", s.abs(i), err)
	}
	return pix, gw, gh, nil
}

// DecodeAll decodes every image of the split into the cache, in parallel
// (CPU use bounded by GOMAXPROCS), and returns the first error in sample order. Useful
// before timing-sensitive training; otherwise images decode on first use.
func (s *Split) DecodeAll() error {
	if _, _, err := s.Shape(); err != nil {
		return err
	}
	if s.mem != nil {
		return nil
	}
	errs := make([]error, len(s.Paths))
	var failed atomic.Bool
	parallelFor(len(s.Paths), ioWorkers(), func(i int) {
		if failed.Load() {
			return
		}
		if _, err := s.Image(i); err != nil {
			errs[i] = err
			failed.Store(true)
		}
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// byteToUnit maps a pixel value to [0,1].
var byteToUnit = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return t
}()

// Batch copies the images of samples idx into dst as pixel/255 float32
// values, image after image (len(idx)*Height*Width values; dst may be
// longer, the rest is untouched), and returns their labels.
func (s *Split) Batch(idx []int32, dst []float32) ([]int32, error) {
	h, w, err := s.Shape()
	if err != nil {
		return nil, err
	}
	if c := s.Channels(); c != 1 {
		return nil, fmt.Errorf("%s: Batch reads grey images, these have %d channels", s.MapFile, c)
	}
	hw := h * w
	if len(dst) < len(idx)*hw {
		return nil, fmt.Errorf("batch of %d images of %dx%d needs %d values, dst has %d", len(idx), w, h, len(idx)*hw, len(dst))
	}
	return s.images(idx, func(k int, pix []uint8) {
		out := dst[k*hw : (k+1)*hw]
		for j, p := range pix {
			out[j] = byteToUnit[p]
		}
	})
}

// images calls fn with the pixels of each sample idx[k], in order, and
// returns their labels. The pixels are only valid during the call: an
// image the cache budget does not keep is decoded into a scratch buffer
// that the next one reuses.
func (s *Split) images(idx []int32, fn func(k int, pix []uint8)) ([]int32, error) {
	labels := make([]int32, len(idx))
	var scratch []uint8
	for k, i := range idx {
		pix, kept, err := s.image(int(i), scratch)
		if err != nil {
			return nil, err
		}
		if !kept {
			scratch = pix
		}
		fn(k, pix)
		labels[k] = s.Labels[i]
	}
	return labels, nil
}
