package bundle

import (
	"archive/zip"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// ZIP record signatures and fixed lengths (APPNOTE.TXT 4.3).
const (
	localHeaderSig   = 0x04034b50
	descriptorSig    = 0x08074b50
	dirEndSig        = 0x06054b50
	dir64LocatorSig  = 0x07064b50
	dir64EndSig      = 0x06064b50
	localHeaderLen   = 30
	dirHeaderLen     = 46
	dirEndLen        = 22
	dir64LocatorLen  = 20
	dir64EndLen      = 56
	uint32max        = 1<<32 - 1
	flagDataDescript = 0x8
)

// checkLayout checks that the ZIP's bytes are its entries back to back
// from the first byte, then its central directory, then the end record,
// and nothing else: no bytes before, between or after, no entry that the
// central directory does not list (which some extractors would still
// extract), and no local header naming a file other than the central
// directory's name for it (which a streaming extractor would use). The
// reader only ever looks at the central directory; these are the places
// where another tool could see another bundle in the same bytes.
func checkLayout(r io.ReaderAt, size int64, zr *zip.Reader) error {
	if zr.Comment != "" {
		return errors.New("the ZIP has a comment")
	}
	dirStart, dirLen, dirEnd, err := centralDirectory(r, size)
	if err != nil {
		return err
	}
	files := slices.Clone(zr.File)
	offsets := make(map[*zip.File]int64, len(files))
	for _, f := range files {
		off, err := f.DataOffset()
		if err != nil {
			return fmt.Errorf("%s: %w", printable(f.Name), err)
		}
		offsets[f] = off
	}
	slices.SortFunc(files, func(a, b *zip.File) int { return cmp.Compare(offsets[a], offsets[b]) })

	var pos, wantDirLen int64
	for _, f := range files {
		if pos, err = checkLocal(r, f, pos, offsets[f]); err != nil {
			return fmt.Errorf("%s: %w", printable(f.Name), err)
		}
		wantDirLen += int64(dirHeaderLen + len(f.Name) + len(f.Extra) + len(f.Comment))
	}
	switch {
	case pos != dirStart:
		return fmt.Errorf("the central directory starts at byte %d, not where the last entry ends (%d)", dirStart, pos)
	case dirLen != wantDirLen:
		return fmt.Errorf("the central directory is %d bytes, not the %d its %d entries take", dirLen, wantDirLen, len(files))
	case dirStart+dirLen != dirEnd:
		return fmt.Errorf("%d bytes between the central directory and its end record", dirEnd-dirStart-dirLen)
	}
	return nil
}

// checkLocal checks the entry whose local header should be at pos and
// returns where the next one should start.
func checkLocal(r io.ReaderAt, f *zip.File, pos, dataOffset int64) (int64, error) {
	var h [localHeaderLen]byte
	if _, err := r.ReadAt(h[:], pos); err != nil {
		return 0, fmt.Errorf("no local header at byte %d: %w", pos, err)
	}
	if binary.LittleEndian.Uint32(h[:]) != localHeaderSig {
		return 0, fmt.Errorf("no local header at byte %d", pos)
	}
	nameLen := int64(binary.LittleEndian.Uint16(h[26:]))
	extraLen := int64(binary.LittleEndian.Uint16(h[28:]))
	if pos+localHeaderLen+nameLen+extraLen != dataOffset {
		return 0, fmt.Errorf("its data is not right after its local header at byte %d", pos)
	}
	name := make([]byte, nameLen)
	if _, err := r.ReadAt(name, pos+localHeaderLen); err != nil {
		return 0, err
	}
	if string(name) != f.Name {
		return 0, fmt.Errorf("its local header names it %q", name)
	}
	size, ok := toInt64(f.CompressedSize64)
	if !ok || size > math.MaxInt64-dataOffset {
		return 0, fmt.Errorf("it declares %d compressed bytes", f.CompressedSize64)
	}
	next := dataOffset + size
	if f.Flags&flagDataDescript == 0 {
		return next, nil
	}
	// A data descriptor: an optional signature, the CRC-32, and the sizes
	// on 4 bytes, or on 8 in a ZIP64 entry.
	var sig [4]byte
	if _, err := r.ReadAt(sig[:], next); err != nil {
		return 0, fmt.Errorf("no data descriptor: %w", err)
	}
	if binary.LittleEndian.Uint32(sig[:]) == descriptorSig {
		next += 4
	}
	sizes := int64(8)
	if f.CompressedSize64 >= uint32max || f.UncompressedSize64 >= uint32max {
		sizes = 16
	}
	var crc [4]byte
	if _, err := r.ReadAt(crc[:], next); err != nil {
		return 0, fmt.Errorf("no data descriptor: %w", err)
	}
	if binary.LittleEndian.Uint32(crc[:]) != f.CRC32 {
		return 0, errors.New("its data descriptor's CRC-32 differs from the central directory's")
	}
	return next + 4 + sizes, nil
}

// centralDirectory reads the end records at the end of the ZIP, which
// has no comment, and returns where the central directory starts, its
// length, and where the end records start.
func centralDirectory(r io.ReaderAt, size int64) (start, length, end int64, err error) {
	end = size - dirEndLen
	var e [dirEndLen]byte
	if end < 0 {
		return 0, 0, 0, errors.New("too short for a ZIP")
	}
	if _, err := r.ReadAt(e[:], end); err != nil {
		return 0, 0, 0, err
	}
	if binary.LittleEndian.Uint32(e[:]) != dirEndSig {
		return 0, 0, 0, errors.New("the ZIP does not end with its end-of-central-directory record")
	}
	if binary.LittleEndian.Uint32(e[4:]) != 0 {
		return 0, 0, 0, errors.New("a multi-disk ZIP")
	}
	length = int64(binary.LittleEndian.Uint32(e[12:]))
	start = int64(binary.LittleEndian.Uint32(e[16:]))
	if length != uint32max && start != uint32max && binary.LittleEndian.Uint16(e[10:]) != 0xffff {
		return start, length, end, nil
	}
	// ZIP64: a locator just before the end record points to the ZIP64 end
	// record, which must lie just before the locator.
	var loc [dir64LocatorLen]byte
	if end-dir64LocatorLen < 0 {
		return 0, 0, 0, errors.New("no ZIP64 end-of-central-directory locator")
	}
	if _, err := r.ReadAt(loc[:], end-dir64LocatorLen); err != nil {
		return 0, 0, 0, err
	}
	if binary.LittleEndian.Uint32(loc[:]) != dir64LocatorSig {
		return 0, 0, 0, errors.New("no ZIP64 end-of-central-directory locator")
	}
	end = end - dir64LocatorLen - dir64EndLen
	if at, ok := toInt64(binary.LittleEndian.Uint64(loc[8:])); end < 0 || !ok || at != end {
		return 0, 0, 0, errors.New("the ZIP64 end-of-central-directory record is not just before its locator")
	}
	var e64 [dir64EndLen]byte
	if _, err := r.ReadAt(e64[:], end); err != nil {
		return 0, 0, 0, err
	}
	if binary.LittleEndian.Uint32(e64[:]) != dir64EndSig || binary.LittleEndian.Uint64(e64[4:]) != dir64EndLen-12 {
		return 0, 0, 0, errors.New("a ZIP64 end-of-central-directory record with extensible data")
	}
	dirOffset, ok1 := toInt64(binary.LittleEndian.Uint64(e64[48:]))
	dirSize, ok2 := toInt64(binary.LittleEndian.Uint64(e64[40:]))
	if !ok1 || !ok2 {
		return 0, 0, 0, errors.New("a ZIP64 end-of-central-directory record with an impossible size or offset")
	}
	return dirOffset, dirSize, end, nil
}

// toInt64 is u as an int64, and false when it does not fit: sizes and
// offsets in a ZIP are the sender's words, and one past MaxInt64 must not
// turn negative.
func toInt64(u uint64) (int64, bool) {
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}
