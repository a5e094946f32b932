package main

import (
	"fmt"
	"math/rand"
	"os"

	"example.com/app/hash"
)

func main() {
	os.Setenv("APP_MODE", "demo")
	fmt.Println(roll(), hash.Sum([]byte("hello")))
}

func roll() int {
	return rand.Intn(6)
}
