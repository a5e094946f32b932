package format

import (
	"strings"

	"github.com/github/go-spdx/v2/spdxexp"
)

// licenseExpression joins a component's declared licenses into one SPDX
// license expression ("MIT", "(MIT OR Apache-2.0) AND BSD-3-Clause"); ok
// is false when any of them is not a valid SPDX expression (a free-text
// name such as "Apache 2.0") or there are none.
func licenseExpression(licenses []string) (expr string, ok bool) {
	if len(licenses) == 0 {
		return "", false
	}
	if valid, _ := spdxexp.ValidateLicenses(licenses); !valid {
		return "", false
	}
	if len(licenses) == 1 {
		return licenses[0], true
	}
	parts := make([]string, len(licenses))
	for i, l := range licenses {
		if strings.ContainsRune(strings.TrimSpace(l), ' ') {
			l = "(" + l + ")"
		}
		parts[i] = l
	}
	return strings.Join(parts, " AND "), true
}

// licenseRef makes an SPDX LicenseRef- identifier of a free-text license
// name: letters, digits, '.' and '-' kept, anything else a '-'.
func licenseRef(s string) string {
	var b strings.Builder
	b.WriteString("LicenseRef-")
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}
