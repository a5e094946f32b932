// Package ok is clean.
package ok

// Greeting says hello.
func Greeting() string { return "hello" }
