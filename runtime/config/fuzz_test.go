package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input panics and that whatever Parse accepts
// also passes validation, so callers can trust an accepted Job.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tt := range parseErrorCases {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := Parse(data, "fuzz.yml")
		if err != nil {
			if j != nil {
				t.Fatalf("Parse returned a job with error %v", err)
			}
			return
		}
		if err := j.Conf.Validate(); err != nil {
			t.Fatalf("Parse accepted a Conf that Validate rejects: %v", err)
		}
		if err := j.Validate(); err != nil {
			t.Fatalf("Parse accepted a Job that Validate rejects: %v", err)
		}
		if n, err := j.Executors(); err != nil || n < 1 {
			t.Fatalf("accepted Job has Executors() = %d, %v", n, err)
		}
		_ = j.Conf.LogDir()
	})
}
