package ci

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/vigil-sec/vigil/scanner"
)

// MaxBaselineSize bounds how much of a baseline file LoadBaseline reads.
const MaxBaselineSize = 256 << 20 // 256 MiB

// sarifVersion is the only SARIF version LoadBaseline reads.
const sarifVersion = "2.1.0"

// acceptedFormats is what LoadBaseline's errors say it accepts.
const acceptedFormats = "want Vigil's JSON scan output (an object with findings[].fingerprint) or SARIF 2.1.0 (runs[].results[].partialFingerprints[\"" + scanner.FingerprintKey + "\"])"

// Baseline is the set of finding fingerprints of an earlier scan, usually of
// the target branch: Evaluate marks findings in it unchanged, and unchanged
// findings never fail the gate.
type Baseline struct {
	// Source names the file the baseline came from, if any.
	Source string
	fps    map[string]struct{}
}

// NewBaseline returns a baseline holding the given fingerprints.
func NewBaseline(fingerprints ...string) *Baseline {
	b := &Baseline{fps: make(map[string]struct{}, len(fingerprints))}
	for _, fp := range fingerprints {
		b.add(fp)
	}
	return b
}

func (b *Baseline) add(fp string) {
	if fp != "" {
		b.fps[fp] = struct{}{}
	}
}

// Contains reports whether the baseline holds the fingerprint.
func (b *Baseline) Contains(fingerprint string) bool {
	if b == nil || fingerprint == "" {
		return false
	}
	_, ok := b.fps[fingerprint]
	return ok
}

// Len is the number of distinct fingerprints in the baseline.
func (b *Baseline) Len() int {
	if b == nil {
		return 0
	}
	return len(b.fps)
}

// LoadBaseline reads the fingerprints of an earlier scan from a file in
// Vigil's JSON scan output or in SARIF 2.1.0, telling them apart by
// content. Findings and results without a fingerprint are skipped. Any
// problem with the file is a scanner.ErrUsage naming it.
func LoadBaseline(path string) (*Baseline, error) {
	return loadBaseline(path, MaxBaselineSize)
}

func loadBaseline(path string, limit int64) (*Baseline, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: baseline: %w", scanner.ErrUsage, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: baseline: %w", scanner.ErrUsage, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: baseline %s: larger than the limit of %d bytes", scanner.ErrUsage, path, limit)
	}
	b, err := parseBaseline(data)
	if err != nil {
		return nil, fmt.Errorf("%w: baseline %s: %s", scanner.ErrUsage, path, err)
	}
	b.Source = path
	return b, nil
}

// parseBaseline decodes a baseline document. Its errors say what is wrong
// and which formats are accepted; LoadBaseline adds the file.
func parseBaseline(data []byte) (*Baseline, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("not a JSON object (%v); %s", err, acceptedFormats)
	}
	_, hasRuns := probe["runs"]
	if v, ok := probe["version"]; ok && hasRuns {
		var version string
		_ = json.Unmarshal(v, &version)
		if version != sarifVersion {
			return nil, fmt.Errorf("SARIF version %q is not supported; %s", version, acceptedFormats)
		}
		return parseSARIF(data)
	}
	if _, ok := probe["findings"]; ok {
		return parseVigil(data)
	}
	return nil, fmt.Errorf("unrecognised format; %s", acceptedFormats)
}

func parseVigil(data []byte) (*Baseline, error) {
	var doc struct {
		Findings []struct {
			Fingerprint string `json:"fingerprint"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("invalid Vigil scan output: %v; %s", err, acceptedFormats)
	}
	b := NewBaseline()
	for _, f := range doc.Findings {
		b.add(f.Fingerprint)
	}
	return b, nil
}

func parseSARIF(data []byte) (*Baseline, error) {
	var doc struct {
		Runs []struct {
			Results []struct {
				PartialFingerprints map[string]string `json:"partialFingerprints"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("invalid SARIF: %v; %s", err, acceptedFormats)
	}
	b := NewBaseline()
	for _, run := range doc.Runs {
		for _, r := range run.Results {
			b.add(r.PartialFingerprints[scanner.FingerprintKey])
		}
	}
	return b, nil
}
