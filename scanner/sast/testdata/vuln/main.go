// Command vuln is a gosec fixture: every line here is wrong on purpose.
package main

import (
	"crypto/md5"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
)

const dbPassword = "f62e5bcda4fae4f82370da0c6f20697b8f8447ef"

func main() {
	name := os.Args[1]
	out, _ := exec.Command(name, "--version").Output()
	fmt.Println(string(out))

	data, err := os.ReadFile(name)
	if err != nil {
		return
	}
	fmt.Printf("%x\n", md5.Sum(data))
	fmt.Println(rand.Intn(100), len(dbPassword))
	os.Remove(name + ".bak")
}
