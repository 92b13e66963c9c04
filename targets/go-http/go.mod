module axbench/targets/go-http

go 1.19
