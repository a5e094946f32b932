package sbom

import (
	"errors"
	"fmt"
	"io"

	"github.com/anchore/syft/syft/format/cyclonedxjson"
	"github.com/anchore/syft/syft/format/cyclonedxxml"
	"github.com/anchore/syft/syft/format/spdxjson"
	syftsbom "github.com/anchore/syft/syft/sbom"

	"github.com/vigil-sec/vigil/scanner"
)

// The versions of the standard formats Vigil writes.
const (
	CycloneDXVersion = "1.6"
	SPDXVersion      = "2.3"
)

// ErrNoDocument means an SBOM carries only Vigil's components, as one
// read back from Vigil's JSON does, so the standard formats cannot be
// written from it without losing detail.
var ErrNoDocument = errors.New("the SBOM has no syft document (was it read back from JSON?): scan the target again to write CycloneDX or SPDX")

// EncodeCycloneDX writes s as a CycloneDX 1.6 document, JSON or XML, with
// syft's CycloneDX encoder (cyclonedx-go underneath).
func EncodeCycloneDX(w io.Writer, s *scanner.SBOM, xml bool) error {
	doc, err := document(s)
	if err != nil {
		return err
	}
	var enc syftsbom.FormatEncoder
	if xml {
		enc, err = cyclonedxxml.NewFormatEncoderWithConfig(cyclonedxxml.EncoderConfig{Version: CycloneDXVersion, Pretty: true})
	} else {
		enc, err = cyclonedxjson.NewFormatEncoderWithConfig(cyclonedxjson.EncoderConfig{Version: CycloneDXVersion, Pretty: true})
	}
	if err != nil {
		return err
	}
	if err := enc.Encode(w, *doc); err != nil {
		return fmt.Errorf("writing CycloneDX: %w", err)
	}
	return nil
}

// EncodeSPDX writes s as an SPDX 2.3 JSON document with syft's encoder.
func EncodeSPDX(w io.Writer, s *scanner.SBOM) error {
	doc, err := document(s)
	if err != nil {
		return err
	}
	enc, err := spdxjson.NewFormatEncoderWithConfig(spdxjson.EncoderConfig{Version: SPDXVersion, Pretty: true})
	if err != nil {
		return err
	}
	if err := enc.Encode(w, *doc); err != nil {
		return fmt.Errorf("writing SPDX: %w", err)
	}
	return nil
}

func document(s *scanner.SBOM) (*syftsbom.SBOM, error) {
	if s == nil {
		return nil, ErrNoDocument
	}
	switch d := s.Document.(type) {
	case *syftsbom.SBOM:
		if d != nil {
			return d, nil
		}
	case syftsbom.SBOM:
		return &d, nil
	}
	return nil, ErrNoDocument
}
