module github.com/integritee-go/integritee

go 1.26
