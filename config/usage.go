package config

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/template"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// templateFuncs are the functions the usage templates call. The templates are
// run by envconfig.Usaget over its description of each variable, whose fields
// Key (the variable name), Field (the reflect.Value) and Tags are used directly.
var templateFuncs = template.FuncMap{
	"kind":  kindOf,
	"shown": shownDefault,
	"md":    escapeMarkdown,
	"pad":   padName,
}

// usageTemplate is the table written by Usage: one line per variable with its
// type and default, then its meaning indented on the next line, so that a long
// default does not push every meaning off the screen.
var usageTemplate = template.Must(template.New("usage").Funcs(templateFuncs).Parse(
	`Environment variables (type, default, meaning):
{{range .}}
  {{pad .Key}}  {{printf "%-8s" (kind .Field)}}  {{with shown .Tags}}{{.}}{{else}}-{{end}}
      {{.Tags.Get "desc"}}
{{- end}}
`))

// markdownTemplate is the Markdown table written by Markdown.
var markdownTemplate = template.Must(template.New("markdown").Funcs(templateFuncs).Parse(
	`| variable | default | meaning |
|---|---|---|
{{range .}}| {{.Key}} | {{md (shown .Tags)}} | {{md (.Tags.Get "desc")}} |
{{end}}`))

// Usage writes every variable with its type, default ("-" for none) and
// meaning, in declaration order, for -h.
func Usage(w io.Writer) error {
	return envconfig.Usaget(Prefix, &Config{}, w, usageTemplate)
}

// Markdown writes the configuration table in Markdown (variable | default |
// meaning), one row per variable in declaration order, for the README.
func Markdown(w io.Writer) error {
	return envconfig.Usaget(Prefix, &Config{}, w, markdownTemplate)
}

// kindOf names the type of a field for Usage.
func kindOf(v reflect.Value) string {
	switch v.Interface().(type) {
	case time.Duration:
		return "duration"
	case []string:
		return "list"
	case bool:
		return "bool"
	case int:
		return "int"
	case float64:
		return "number"
	case string:
		return "string"
	default:
		return v.Type().String()
	}
}

// shownDefault is the default as documented: the `shown` tag, else `default`.
func shownDefault(tags reflect.StructTag) string {
	if s := tags.Get("shown"); s != "" {
		return s
	}
	return tags.Get("default")
}

// escapeMarkdown makes s safe inside a Markdown table cell.
func escapeMarkdown(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}

// padName pads a variable name to the longest one, to align the columns.
func padName(name string) string {
	width := 0
	for _, f := range fields() {
		width = max(width, len(f.name))
	}
	return fmt.Sprintf("%-*s", width, name)
}
