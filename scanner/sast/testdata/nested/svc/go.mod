module example.com/nested/svc

go 1.24
