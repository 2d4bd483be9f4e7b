package tfevents

import (
	"bytes"
	"encoding/hex"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// CRC32C's standard check value, and the masking of TFRecord's
// record_writer.h (rotate right 15, add 0xa282ead8) worked by hand.
func TestMaskedCRC(t *testing.T) {
	if got := crc32.Checksum([]byte("123456789"), castagnoli); got != 0xe3069283 {
		t.Fatalf("crc32c(123456789) = %08x, want e3069283", got)
	}
	c := uint32(0xe3069283)
	want := ((c >> 15) | (c << 17)) + 0xa282ead8
	if got := MaskedCRC([]byte("123456789")); got != want || want != 0xc78ab0e5 {
		t.Fatalf("masked = %08x, want %08x (= c78ab0e5)", got, want)
	}
}

// The file-version event's bytes, spelled out from event.proto: field 1
// (wall_time) fixed64, field 3 (file_version) length-delimited.
func TestFileVersionEventBytes(t *testing.T) {
	want := "09" + "0000000000c05e40" + "1a0d" + hex.EncodeToString([]byte("brain.Event:2"))
	if got := hex.EncodeToString(FileVersionEvent(123)); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// A scalar: field 1 fixed64, field 2 varint 7, field 5 { field 1 { tag, simple_value 0.5 } }.
	want = "09" + "0000000000c05e40" + "1007" + "2a0a" + "0a08" + "0a01" + "61" + "15" + "0000003f"
	if got := hex.EncodeToString(ScalarsEvent(123, 7, []Scalar{{"a", 0.5}})); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// A file written and read back; every kind of damage is found.
func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, 1700000000, "aggregator")
	if err != nil {
		t.Fatal(err)
	}
	scalars := []Scalar{{"Test/round_to_accuracy", 0.8125}, {"Train/round_to_loss", math.Pi}}
	if err := w.Scalars(1700000010.5, 3, scalars); err != nil {
		t.Fatal(err)
	}
	if err := w.Scalars(1700000011, 4, nil); err != nil { // nothing written
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if base := filepath.Base(w.Path()); base != "events.out.tfevents.1700000000.aggregator" {
		t.Fatalf("file name %s", base)
	}
	b, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	evs, err := Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].FileVersion != FileVersion || evs[0].WallTime != 1700000000 {
		t.Fatalf("events %+v", evs)
	}
	e := evs[1]
	if e.Step != 3 || e.WallTime != 1700000010.5 || len(e.Scalars) != 2 ||
		e.Scalars[0] != scalars[0] || e.Scalars[1].Tag != scalars[1].Tag || e.Scalars[1].Value != float64(float32(math.Pi)) {
		t.Fatalf("event %+v", e)
	}
	for _, tc := range []struct {
		name string
		mod  func([]byte) []byte
		want string
	}{
		{"length", func(b []byte) []byte { b[0] ^= 1; return b }, "length CRC"},
		{"length CRC", func(b []byte) []byte { b[8] ^= 1; return b }, "length CRC"},
		{"data", func(b []byte) []byte { b[14] ^= 1; return b }, "data CRC"},
		{"data CRC", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, "data CRC"},
		{"truncated", func(b []byte) []byte { return b[:len(b)-3] }, "past the end"},
		{"short header", func(b []byte) []byte { return append(b, 1, 2, 3) }, "truncated header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(tc.mod(bytes.Clone(b)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
