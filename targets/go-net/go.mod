module axbench/targets/go-net

go 1.19
