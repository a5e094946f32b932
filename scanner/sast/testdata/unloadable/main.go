// Command unloadable is clean; its bad folder is a module that does not load.
package main

func main() { println("hi") }
