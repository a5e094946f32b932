package main

import "math/rand"

func main() { println(rand.Int()) }
