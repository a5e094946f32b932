module example.com/vuln

go 1.24
