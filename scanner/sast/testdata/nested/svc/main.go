// Command svc is a gosec fixture in a nested module: every line here is
// wrong on purpose.
package main

import (
	"crypto/md5"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"os/exec"

	"example.com/nested/svc/store"
)

const apiPassword = "f62e5bcda4fae4f82370da0c6f20697b8f8447ef"

func main() {
	name := os.Args[1]
	out, _ := exec.Command(name, "--version").Output()
	fmt.Println(string(out))
	data, _ := store.Read(name)
	fmt.Printf("%x %d %d\n", md5.Sum(data), rand.Intn(100), len(apiPassword))
	http.ListenAndServe(":8080", nil)
}
