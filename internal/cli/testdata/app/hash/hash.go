// Package hash sums data with a weak hash.
package hash

import (
	"crypto/md5"
	"encoding/hex"
)

// Sum returns the hex MD5 of data.
func Sum(data []byte) string {
	h := md5.New()
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}
