package trace

import (
	"os"
	"path/filepath"
	"testing"
)

// fuzzSeeds adds every fixture, a generated pickle and some garbage.
func fuzzSeeds(f *testing.F) {
	files, err := filepath.Glob("testdata/*")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		if len(data) <= 4096 {
			f.Add(data)
		}
	}
	capDict, _ := syntheticCapacities(3)
	behDict, _ := syntheticBehaviors(3)
	for _, s := range [][]byte{
		pickle2(capDict), pickle2(behDict),
		nil, []byte("{"), []byte("[]"), []byte("\x80"), []byte("\x80\x02."),
		[]byte("\x80\x02\x8a\x00."), []byte("(K\x01d."), []byte("\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7f"),
		[]byte(`{"1": {"computation": 1, "communication": 1, "finish_time": 3, "active": [1], "inactive": [2]}}`),
	} {
		f.Add(s)
	}
}

func FuzzParseCapacities(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		caps, err := ParseCapacities(data, "fuzz")
		if err != nil {
			return
		}
		if len(caps) == 0 {
			t.Fatal("no error and no entries")
		}
		for i, c := range caps {
			if err := c.Validate(); err != nil {
				t.Fatalf("entry %d accepted but invalid: %v", i, err)
			}
		}
	})
}

func FuzzParseBehaviors(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		bs, err := ParseBehaviors(data, "fuzz")
		if err != nil {
			return
		}
		if len(bs) == 0 {
			t.Fatal("no error and no entries")
		}
		for i := range bs {
			if err := bs[i].Validate(); err != nil {
				t.Fatalf("entry %d accepted but invalid: %v", i, err)
			}
			bs[i].Online(12345.5)
		}
	})
}
