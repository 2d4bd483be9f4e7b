package data

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// pngBytes encodes img as a PNG.
func pngBytes(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// grayPNG returns a w x h grey PNG whose pixel k is byte(seed+k).
func grayPNG(t *testing.T, w, h, seed int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for k := range img.Pix {
		img.Pix[k] = byte(seed + k)
	}
	return pngBytes(t, img)
}

// makeDir writes files (path relative to the returned dir -> content).
func makeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const hdr = "client_id,sample_path,label_name,label_id\n"

func TestLoadSplitErrors(t *testing.T) {
	img := string(grayPNG(t, 4, 4, 0))
	tests := []struct {
		name    string
		csv     string // train.csv content; "-" means no file
		files   map[string]string
		dataDir string // overrides the temp dir when set
		want    string
	}{
		{name: "bad header", csv: "client,path,label_name,label_id\na,train/0.png,x,0\n", want: `train.csv:1: header "client,path,label_name,label_id"`},
		{name: "header short", csv: "client_id,sample_path\n", want: "train.csv:1: header"},
		{name: "short row", csv: hdr + "a,train/0.png,x,0\na,train/0.png,0\n", want: "train.csv:3: 3 fields, expected 4"},
		{name: "long row", csv: hdr + "a,train/0.png,x,0,9\n", want: "train.csv:2: 5 fields, expected 4"},
		{name: "label not a number", csv: hdr + "a,train/0.png,x,0\na,train/0.png,x,0\na,train/0.png,x,x\n", want: `train.csv:4: label_id "x": expected a non-negative integer`},
		{name: "negative label", csv: hdr + "a,train/0.png,x,-1\n", want: `train.csv:2: label_id "-1": expected a non-negative integer`},
		{name: "fractional label", csv: hdr + "a,train/0.png,x,1.5\n", want: `label_id "1.5"`},
		{name: "huge label", csv: hdr + "a,train/0.png,x,99999999\n", want: "larger than the maximum"},
		{name: "empty client", csv: hdr + ",train/0.png,x,1\n", want: "train.csv:2: client_id is empty"},
		{name: "empty path", csv: hdr + "a,,x,1\n", want: "train.csv:2: sample_path is empty"},
		{name: "missing image", csv: hdr + "a,train/0.png,x,0\nb,train/9.png,x,0\n", want: "train.csv:3: image train/9.png: no such file"},
		{name: "image is a directory", csv: hdr + "a,train,x,0\n", want: "train.csv:2: image train: not a regular file"},
		{name: "only header", csv: hdr, want: "train.csv: no samples"},
		{name: "empty file", csv: "", want: "train.csv: empty file"},
		{name: "bad quoting", csv: hdr + "a,\"train/0.png,x,0\n", want: "train.csv"},
		{name: "no map file", csv: "-", want: "train.csv: no such file"},
		{name: "missing data dir", csv: hdr, dataDir: "/nonexistent/fsdata-test", want: "data_dir /nonexistent/fsdata-test: no such directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"train/0.png": img}
			if tc.csv != "-" {
				files["client_data_mapping/train.csv"] = tc.csv
			}
			dir := makeDir(t, files)
			dataDir := dir
			if tc.dataDir != "" {
				dataDir = tc.dataDir
			}
			_, err := LoadSplit(dataDir, filepath.Join(dir, "client_data_mapping", "train.csv"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadSplitParsing(t *testing.T) {
	img := string(grayPNG(t, 2, 2, 0))
	tests := []struct {
		name          string
		csv           string
		names         []string
		clients       []int32
		labels        []int32
		clientSamples [][]int32
	}{
		{
			name:          "first appearance order",
			csv:           hdr + "b,i/0.png,x,3\na,i/1.png,y,1\nb,i/2.png,x,3\nc,i/3.png,z,0\n",
			names:         []string{"b", "a", "c"},
			clients:       []int32{0, 1, 0, 2},
			labels:        []int32{3, 1, 3, 0},
			clientSamples: [][]int32{{0, 2}, {1}, {3}},
		},
		{
			name:          "BOM, CRLF, spaces and quotes",
			csv:           "\ufeff" + strings.ReplaceAll(hdr, "\n", "\r\n") + "\"f0,1\", i/0.png ,\"a, b\", 7 \r\n\r\nf2,i/1.png,c,2\r\n",
			names:         []string{"f0,1", "f2"},
			clients:       []int32{0, 1},
			labels:        []int32{7, 2},
			clientSamples: [][]int32{{0}, {1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"map.csv": tc.csv}
			for i := range 4 {
				files["i/"+string(rune('0'+i))+".png"] = img
			}
			dir := makeDir(t, files)
			s, err := LoadSplit(dir, filepath.Join(dir, "map.csv"))
			if err != nil {
				t.Fatal(err)
			}
			if !equal(s.ClientNames, tc.names) || !equal(s.Clients, tc.clients) || !equal(s.Labels, tc.labels) {
				t.Errorf("names %q clients %v labels %v; want %q %v %v", s.ClientNames, s.Clients, s.Labels, tc.names, tc.clients, tc.labels)
			}
			if len(s.ClientSamples) != len(tc.clientSamples) {
				t.Fatalf("client samples %v, want %v", s.ClientSamples, tc.clientSamples)
			}
			for k := range tc.clientSamples {
				if !equal(s.ClientSamples[k], tc.clientSamples[k]) {
					t.Errorf("client %d samples %v, want %v", k, s.ClientSamples[k], tc.clientSamples[k])
				}
			}
			if s.Len() != len(tc.labels) || s.NumClients() != len(tc.names) {
				t.Errorf("Len %d NumClients %d", s.Len(), s.NumClients())
			}
		})
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestImageDecoding(t *testing.T) {
	// Red, green, blue, white: luminance 0.299, 0.587, 0.114 of 255, rounded.
	want := []uint8{76, 150, 29, 255}
	cols := []color.RGBA{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}, {255, 255, 255, 255}}
	rgba := image.NewRGBA(image.Rect(0, 0, 2, 2))
	nrgba := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	pal := image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{cols[0], cols[1], cols[2], cols[3]})
	rgb16 := image.NewRGBA64(image.Rect(0, 0, 2, 2))
	for k, c := range cols {
		x, y := k%2, k/2
		rgba.Set(x, y, c)
		nrgba.Set(x, y, c)
		pal.Set(x, y, c)
		rgb16.Set(x, y, c)
	}
	gray16 := image.NewGray16(image.Rect(0, 0, 2, 2))
	for k, v := range want {
		gray16.SetGray16(k%2, k/2, color.Gray16{Y: uint16(v) * 0x101})
	}
	gray := image.NewGray(image.Rect(0, 0, 2, 2))
	copy(gray.Pix, want)
	// A sub-image has a non-zero origin and a stride larger than its width.
	big := image.NewGray(image.Rect(0, 0, 5, 5))
	for k, v := range want {
		big.SetGray(2+k%2, 3+k/2, color.Gray{Y: v})
	}
	sub := big.SubImage(image.Rect(2, 3, 4, 5))

	tests := []struct {
		name string
		img  image.Image
	}{
		{"grey", gray}, {"grey sub-image", sub}, {"grey 16-bit", gray16},
		{"RGB", rgba}, {"RGBA non-premultiplied", nrgba}, {"paletted", pal}, {"RGB 16-bit", rgb16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pix, w, h, err := decodeGray(pngBytes(t, tc.img))
			if err != nil {
				t.Fatal(err)
			}
			if w != 2 || h != 2 || !equal(pix, want) {
				t.Errorf("got %dx%d %v, want 2x2 %v", w, h, pix, want)
			}
		})
	}
}

func TestImageAndBatch(t *testing.T) {
	dir := makeDir(t, map[string]string{
		"client_data_mapping/train.csv": hdr + "a,train/0.png,x,1\nb,train/1.png,y,2\na,train/2.png,x,1\n",
		"client_data_mapping/test.csv":  hdr + "a,test/0.png,x,4\n",
		"train/0.png":                   string(grayPNG(t, 3, 2, 0)),
		"train/1.png":                   string(grayPNG(t, 3, 2, 100)),
		"train/2.png":                   string(grayPNG(t, 3, 2, 250)),
		"test/0.png":                    string(grayPNG(t, 3, 2, 7)),
	})
	ds, err := Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if ds.Classes != 5 || ds.Height != 2 || ds.Width != 3 {
		t.Fatalf("classes %d size %dx%d, want 5 and 3x2", ds.Classes, ds.Width, ds.Height)
	}

	// Concurrent first use of the same images must agree (run with -race).
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3 {
				if _, err := ds.Train.Image(i); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	pix, err := ds.Train.Image(2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint8{250, 251, 252, 253, 254, 255}; !equal(pix, want) {
		t.Errorf("image 2 = %v, want %v", pix, want)
	}

	dst := make([]float32, 2*6+1)
	dst[12] = -1
	labels, err := ds.Train.Batch([]int32{2, 1}, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(labels, []int32{1, 2}) {
		t.Errorf("labels %v, want [1 2]", labels)
	}
	for k, want := range []float32{250. / 255, 251. / 255, 252. / 255, 253. / 255, 254. / 255, 1, 100. / 255} {
		if dst[k] != want {
			t.Errorf("dst[%d] = %v, want %v", k, dst[k], want)
		}
	}
	if dst[12] != -1 {
		t.Errorf("Batch wrote past len(idx)*H*W")
	}

	errTests := []struct {
		name string
		idx  []int32
		dst  []float32
		want string
	}{
		{"dst too small", []int32{0, 1}, make([]float32, 11), "needs 12 values, dst has 11"},
		{"index too large", []int32{3}, make([]float32, 6), "sample 3 out of range [0,3)"},
		{"negative index", []int32{-1}, make([]float32, 6), "sample -1 out of range"},
	}
	handMade := &Split{MapFile: "hand.csv", Paths: []string{"a.png"}, Labels: []int32{0}}
	if _, err := handMade.Image(0); err == nil || !strings.Contains(err.Error(), "not created by LoadSplit") {
		t.Errorf("hand-made split: %v", err)
	}
	if _, err := (&Split{}).Batch(nil, nil); err == nil {
		t.Error("empty split: no error from Batch")
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ds.Train.Batch(tc.idx, tc.dst); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	good := string(grayPNG(t, 4, 4, 0))
	train := hdr + "a,train/0.png,x,0\na,train/1.png,x,1\n"
	test := hdr + "a,test/0.png,x,0\n"
	tests := []struct {
		name  string
		files map[string]string
		load  func(dir string) error // nil: Load(dir, "")
		want  string
	}{
		{
			name:  "corrupt PNG on use",
			files: map[string]string{"train/1.png": "not a png"},
			load: func(dir string) error {
				ds, err := Load(dir, "")
				if err != nil {
					return err
				}
				_, err = ds.Train.Image(1)
				return err
			},
			want: "train/1.png: corrupt PNG",
		},
		{
			name:  "truncated PNG",
			files: map[string]string{"train/1.png": good[:len(good)-20]},
			load: func(dir string) error {
				ds, err := Load(dir, "")
				if err != nil {
					return err
				}
				return ds.Train.DecodeAll()
			},
			want: "train/1.png: corrupt PNG",
		},
		{
			name:  "wrong size on use",
			files: map[string]string{"train/1.png": string(grayPNG(t, 5, 4, 0))},
			load: func(dir string) error {
				ds, err := Load(dir, "")
				if err != nil {
					return err
				}
				_, err = ds.Train.Batch([]int32{0, 1}, make([]float32, 32))
				return err
			},
			want: "train/1.png: 5x4, expected 4x4",
		},
		{name: "corrupt first training image", files: map[string]string{"train/0.png": "junk"}, want: "training set: image "},
		{name: "test image of another size", files: map[string]string{"test/0.png": string(grayPNG(t, 3, 3, 0))}, want: "test set: image "},
		{name: "no test mapping", files: map[string]string{"client_data_mapping/test.csv": "-"}, want: "test set: client data mapping"},
		{name: "missing data dir", load: func(string) error { _, err := Load("/nonexistent/fsdata", ""); return err }, want: "data_dir /nonexistent/fsdata: no such directory"},
		{name: "data dir is a file", load: func(dir string) error { _, err := Load(filepath.Join(dir, "train/0.png"), ""); return err }, want: "not a directory"},
		{name: "custom train map missing", load: func(dir string) error { _, err := Load(dir, filepath.Join(dir, "nope.csv")); return err }, want: "nope.csv"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{
				"client_data_mapping/train.csv": train, "client_data_mapping/test.csv": test,
				"train/0.png": good, "train/1.png": good, "test/0.png": good,
			}
			for k, v := range tc.files {
				files[k] = v
				if v == "-" {
					delete(files, k)
				}
			}
			dir := makeDir(t, files)
			load := tc.load
			if load == nil {
				load = func(dir string) error { _, err := Load(dir, ""); return err }
			}
			if err := load(dir); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadCustomTrainMap(t *testing.T) {
	img := string(grayPNG(t, 2, 2, 0))
	dir := makeDir(t, map[string]string{
		"other.csv":                    hdr + "z,train/0.png,x,8\n",
		"client_data_mapping/test.csv": hdr + "a,test/0.png,x,0\n",
		"train/0.png":                  img, "test/0.png": img,
	})
	ds, err := Load(dir, filepath.Join(dir, "other.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if ds.Classes != 9 || ds.Train.ClientNames[0] != "z" {
		t.Errorf("classes %d clients %q, want 9 and [z]", ds.Classes, ds.Train.ClientNames)
	}
}

// TestSamplePathConfined refuses mapping rows whose sample_path leaves
// data_dir, even where the file they name exists, naming the file and
// line; a path that wanders but stays inside is fine.
func TestSamplePathConfined(t *testing.T) {
	img := string(grayPNG(t, 4, 4, 0))
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"../outside.png", false},
		{"../../x.png", false},
		{"train/../../outside.png", false},
		{"./../outside.png", false},
		{"..", false},
		{"/etc/passwd", false},
		{"OUTSIDE", false}, // replaced by the outside file's absolute path
		{"train/0.png", true},
		{"./train/0.png", true},
		{"train/../train/0.png", true},
	} {
		t.Run(tc.path, func(t *testing.T) {
			dir := makeDir(t, map[string]string{"outside.png": img, "data/train/0.png": img})
			path := tc.path
			if path == "OUTSIDE" {
				path = filepath.Join(dir, "outside.png")
			}
			mapFile := filepath.Join(dir, "train.csv")
			if err := os.WriteFile(mapFile, []byte(hdr+"a,train/0.png,x,0\nb,"+path+",x,1\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadSplit(filepath.Join(dir, "data"), mapFile)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			want := mapFile + `:3: sample_path "` + path + `" is outside data_dir`
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want it to contain %q", err, want)
			}
		})
	}
}
