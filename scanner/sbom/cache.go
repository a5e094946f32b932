package sbom

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/anchore/syft/syft/format/syftjson"

	"github.com/vigil-sec/vigil/scanner"
)

// codec stores the engine's output in the scan cache: Vigil's components
// as they are, and syft's document as syft JSON, which syft reads back
// into the same document (packages, files, relationships, source, distro)
// for the CycloneDX and SPDX encoders.
var codec = &scanner.Codec{Encode: encodeOutput, Decode: decodeOutput}

// cachedOutput is the first line of a cached output; syft's JSON
// document follows it, so that decoding parses the document once.
type cachedOutput struct {
	Components []scanner.Component `json:"components"`
	Warnings   []string            `json:"warnings,omitempty"`
}

func encodeOutput(o *scanner.Output) ([]byte, error) {
	if o.SBOM == nil {
		return nil, errors.New("sbom: no SBOM to cache")
	}
	doc, err := document(o.SBOM)
	if err != nil {
		return nil, err
	}
	// json.Marshal escapes newlines in strings: the header is one line.
	head, err := json.Marshal(cachedOutput{Components: o.SBOM.Components, Warnings: o.Warnings})
	if err != nil {
		return nil, err
	}
	buf := bytes.NewBuffer(append(head, '\n'))
	if err := syftjson.NewFormatEncoder().Encode(buf, *doc); err != nil {
		return nil, fmt.Errorf("sbom: encode the document for the cache: %w", err)
	}
	return buf.Bytes(), nil
}

func decodeOutput(b []byte) (*scanner.Output, error) {
	head, body, ok := bytes.Cut(b, []byte{'\n'})
	if !ok {
		return nil, errors.New("sbom: cached output has no document")
	}
	var c cachedOutput
	if err := json.Unmarshal(head, &c); err != nil {
		return nil, fmt.Errorf("sbom: cached output: %w", err)
	}
	doc, _, _, err := syftjson.NewFormatDecoder().Decode(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("sbom: cached document: %w", err)
	}
	if c.Components == nil {
		c.Components = []scanner.Component{}
	}
	return &scanner.Output{SBOM: &scanner.SBOM{Components: c.Components, Document: doc}, Warnings: c.Warnings}, nil
}
