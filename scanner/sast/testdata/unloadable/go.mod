module example.com/unloadable

go 1.24
