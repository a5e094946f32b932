// Command mod is in a folder the go command's ./... skips.
package main

import "math/rand"

func main() { println(rand.Int()) }
