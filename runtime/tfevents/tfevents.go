// Package tfevents writes TensorBoard event files (events.out.tfevents.*)
// of scalars, so that `tensorboard --logdir` shows our runs beside
// FedScale's. It encodes the two messages it needs by hand with protowire
// rather than pulling in TensorFlow's protobuf definitions:
//
//	message Event   { double wall_time = 1; int64 step = 2;
//	                  oneof what { string file_version = 3; Summary summary = 5; } }
//	message Summary { repeated Value value = 1; }
//	message Value   { string tag = 1; float simple_value = 2; }
//
// (tensorflow/core/util/event.proto, tensorflow/core/framework/summary.proto),
// each in a TFRecord frame: the data's length as a little-endian uint64,
// the masked CRC32C of those 8 bytes, the data, the masked CRC32C of the
// data.
package tfevents

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protowire"
)

// FileVersion is the first event of every file; readers check its prefix.
const FileVersion = "brain.Event:2"

// Field numbers of the messages written (see the package comment).
const (
	eventWallTime    protowire.Number = 1
	eventStep        protowire.Number = 2
	eventFileVersion protowire.Number = 3
	eventSummary     protowire.Number = 5
	summaryValue     protowire.Number = 1
	valueTag         protowire.Number = 1
	valueSimpleValue protowire.Number = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MaskedCRC is TFRecord's masked CRC32C of b: rotated right by 15 bits
// plus a constant, so that a CRC of data that holds CRCs stays strong.
func MaskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// Frame is data as one TFRecord.
func Frame(data []byte) []byte {
	out := make([]byte, 0, 8+4+len(data)+4)
	out = binary.LittleEndian.AppendUint64(out, uint64(len(data)))
	out = binary.LittleEndian.AppendUint32(out, MaskedCRC(out[:8]))
	out = append(out, data...)
	return binary.LittleEndian.AppendUint32(out, MaskedCRC(data))
}

// Scalar is one value under a tag.
type Scalar struct {
	Tag   string
	Value float64 // written as a float32, as TensorBoard's simple_value is
}

// FileVersionEvent is the encoded Event that opens a file.
func FileVersionEvent(wallTime float64) []byte {
	b := protowire.AppendTag(nil, eventWallTime, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(wallTime))
	b = protowire.AppendTag(b, eventFileVersion, protowire.BytesType)
	return protowire.AppendString(b, FileVersion)
}

// ScalarsEvent is the encoded Event of scalars at step.
func ScalarsEvent(wallTime float64, step int64, scalars []Scalar) []byte {
	var sum []byte
	for _, s := range scalars {
		v := protowire.AppendTag(nil, valueTag, protowire.BytesType)
		v = protowire.AppendString(v, s.Tag)
		v = protowire.AppendTag(v, valueSimpleValue, protowire.Fixed32Type)
		v = protowire.AppendFixed32(v, math.Float32bits(float32(s.Value)))
		sum = protowire.AppendTag(sum, summaryValue, protowire.BytesType)
		sum = protowire.AppendBytes(sum, v)
	}
	b := protowire.AppendTag(nil, eventWallTime, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(wallTime))
	b = protowire.AppendTag(b, eventStep, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(step))
	b = protowire.AppendTag(b, eventSummary, protowire.BytesType)
	return protowire.AppendBytes(b, sum)
}

// Writer appends events to one event file.
type Writer struct {
	f *os.File
}

// FileName is the event file's name for a run that started at start
// (Unix seconds) on host: TensorBoard's pattern, events.out.tfevents.
// {start, ten digits}.{host}.
func FileName(start int64, host string) string {
	return fmt.Sprintf("events.out.tfevents.%010d.%s", start, host)
}

// Create opens dir/FileName(start, host) for appending (a run restarted
// within the same second goes on in the same file, which TensorBoard
// reads as one) and writes the file-version event at start.
func Create(dir string, start int64, host string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("event file folder: %w", err)
	}
	path := filepath.Join(dir, FileName(start, host))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("event file: %w", err)
	}
	w := &Writer{f: f}
	if err := w.write(FileVersionEvent(float64(start))); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// Path is the file's path.
func (w *Writer) Path() string { return w.f.Name() }

// Scalars writes one event of scalars at step; none writes nothing.
func (w *Writer) Scalars(wallTime float64, step int64, scalars []Scalar) error {
	if len(scalars) == 0 {
		return nil
	}
	return w.write(ScalarsEvent(wallTime, step, scalars))
}

// write appends one framed event with a single write, so a reader never
// sees half a record followed by another.
func (w *Writer) write(event []byte) error {
	if _, err := w.f.Write(Frame(event)); err != nil {
		return fmt.Errorf("event file %s: %w", w.f.Name(), err)
	}
	return nil
}

// Close closes the file.
func (w *Writer) Close() error { return w.f.Close() }

// Event is one event read back: its time, step, file version (on the
// first) and scalars.
type Event struct {
	WallTime    float64
	Step        int64
	FileVersion string
	Scalars     []Scalar
}

// MaxRecord bounds one record's length when reading: ours are a few
// hundred bytes.
const MaxRecord = 1 << 20

// Read decodes an event file's bytes: every frame's length and CRCs are
// checked, and each event's fields against the definitions above (other
// fields are skipped, as protobuf readers do). It is written apart from
// the encoder, with protowire's decoding side, so that it checks it.
func Read(b []byte) ([]Event, error) {
	var out []Event
	for off := 0; off < len(b); {
		if len(b)-off < 12 {
			return nil, fmt.Errorf("record at byte %d: truncated header", off)
		}
		head := b[off : off+8]
		n := binary.LittleEndian.Uint64(head)
		if got, want := binary.LittleEndian.Uint32(b[off+8:]), MaskedCRC(head); got != want {
			return nil, fmt.Errorf("record at byte %d: length CRC %08x, want %08x", off, got, want)
		}
		if n > MaxRecord || uint64(len(b)-off-12) < n+4 {
			return nil, fmt.Errorf("record at byte %d: length %d past the end or over %d", off, n, MaxRecord)
		}
		data := b[off+12 : off+12+int(n)]
		if got, want := binary.LittleEndian.Uint32(b[off+12+int(n):]), MaskedCRC(data); got != want {
			return nil, fmt.Errorf("record at byte %d: data CRC %08x, want %08x", off, got, want)
		}
		e, err := decodeEvent(data)
		if err != nil {
			return nil, fmt.Errorf("record at byte %d: %w", off, err)
		}
		out = append(out, e)
		off += 12 + int(n) + 4
	}
	return out, nil
}

// fields walks b's fields, calling f with each one's number, type and
// value bytes (a varint or fixed value's bytes too).
func fields(b []byte, f func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return protowire.ParseError(m)
		}
		if err := f(num, typ, b[:m]); err != nil {
			return err
		}
		b = b[m:]
	}
	return nil
}

func decodeEvent(b []byte) (Event, error) {
	var e Event
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == eventWallTime && typ == protowire.Fixed64Type:
			x, _ := protowire.ConsumeFixed64(v)
			e.WallTime = math.Float64frombits(x)
		case num == eventStep && typ == protowire.VarintType:
			x, _ := protowire.ConsumeVarint(v)
			e.Step = int64(x)
		case num == eventFileVersion && typ == protowire.BytesType:
			s, _ := protowire.ConsumeString(v)
			e.FileVersion = s
		case num == eventSummary && typ == protowire.BytesType:
			sum, _ := protowire.ConsumeBytes(v)
			return fields(sum, func(num protowire.Number, typ protowire.Type, v []byte) error {
				if num != summaryValue || typ != protowire.BytesType {
					return nil
				}
				val, _ := protowire.ConsumeBytes(v)
				s, err := decodeValue(val)
				e.Scalars = append(e.Scalars, s)
				return err
			})
		}
		return nil
	})
	return e, err
}

func decodeValue(b []byte) (Scalar, error) {
	var s Scalar
	seen := false
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == valueTag && typ == protowire.BytesType:
			s.Tag, _ = protowire.ConsumeString(v)
		case num == valueSimpleValue && typ == protowire.Fixed32Type:
			x, _ := protowire.ConsumeFixed32(v)
			s.Value, seen = float64(math.Float32frombits(x)), true
		}
		return nil
	})
	if err == nil && !seen {
		err = fmt.Errorf("summary value %q has no simple_value", s.Tag)
	}
	return s, err
}
