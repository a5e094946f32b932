// Command nested is clean; its svc folder is a nested module that is not.
package main

import (
	"fmt"

	"example.com/nested/internal/ok"
)

func main() { fmt.Println(ok.Greeting()) }
