package config

import (
	"reflect"
	"sync"
)

// fieldInfo describes one Config field read from the environment.
type fieldInfo struct {
	field  reflect.StructField
	name   string // the environment variable, e.g. DATACORE_QOS
	secret bool
}

// fields lists the Config fields read from the environment, in declaration order.
var fields = sync.OnceValue(func() []fieldInfo {
	t := reflect.TypeFor[Config]()
	var out []fieldInfo
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("ignored") == "true" {
			continue
		}
		out = append(out, fieldInfo{
			field:  f,
			name:   Prefix + "_" + f.Tag.Get("envconfig"),
			secret: f.Tag.Get("secret") == "true",
		})
	}
	return out
})
