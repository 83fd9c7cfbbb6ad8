module github.com/kerf-edge/kerf

go 1.26
