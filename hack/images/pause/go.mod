module github.com/ha-operator/ha-operator/hack/images/pause

go 1.26.0
