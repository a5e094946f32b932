package scanner

// SBOM is the software bill of materials of a target.
type SBOM struct {
	Components []Component `json:"components"`
	// Document is the engine's own document, kept so that encoders write
	// the standard formats without losing detail. The syft engine stores
	// its *sbom.SBOM here; scanner/sbom encodes it.
	Document any `json:"-"`
}

// Component is one package found in a target.
type Component struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	// Type is the package type as the cataloger names it ("go-module",
	// "deb", "apk", "npm", …).
	Type string `json:"type"`
	PURL string `json:"purl,omitempty"`
	// Licenses are SPDX license IDs or expressions as declared.
	Licenses []string `json:"licenses,omitempty"`
	// Locations are the paths where the package was found, relative to
	// the target root (or absolute inside an image).
	Locations []string `json:"locations,omitempty"`
	// Layer is the digest of the image layer that brought the package.
	Layer string `json:"layer,omitempty"`
}
