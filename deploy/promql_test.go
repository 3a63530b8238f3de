package deploy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// This file holds a small PromQL reader for the tests: enough of the language
// to find every metric selector, its label matchers and the labels of by,
// without, on, ignoring, group_left and group_right clauses. It does not check
// the grammar beyond that; promtool does (see docs/deployment.md).

// selector is one instant or range vector selector.
type selector struct {
	metric   string
	matchers []matcher
}

// matcher is one label matcher of a selector.
type matcher struct {
	label, op, value string
}

// promqlRefs is what an expression refers to.
type promqlRefs struct {
	selectors []selector
	grouping  []string // labels of by/without/on/ignoring/group_left/group_right
}

type tokenKind int

const (
	tIdent tokenKind = iota
	tString
	tNumber
	tVar // a Grafana variable: $name, ${name}, $__rate_interval
	tPunct
)

type token struct {
	kind tokenKind
	text string
}

var (
	errUnterminated = errors.New("unterminated string")
	errUnexpected   = errors.New("unexpected character")
)

// promqlFunctions are PromQL's functions and aggregation operators.
var promqlFunctions = map[string]bool{}

func init() {
	for _, f := range strings.Fields(`abs absent absent_over_time avg_over_time ceil changes clamp clamp_max
		clamp_min count_over_time day_of_month day_of_week day_of_year days_in_month delta deriv exp floor
		histogram_avg histogram_count histogram_fraction histogram_quantile histogram_stddev histogram_stdvar
		histogram_sum holt_winters double_exponential_smoothing hour idelta increase irate label_join
		label_replace last_over_time ln log2 log10 mad_over_time max_over_time min_over_time minute month
		predict_linear present_over_time quantile_over_time rate resets round scalar sgn sort sort_desc
		sort_by_label sort_by_label_desc sqrt stddev_over_time stdvar_over_time sum_over_time time timestamp
		vector year acos acosh asin asinh atan atanh cos cosh sin sinh tan tanh deg rad pi
		sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio`) {
		promqlFunctions[f] = true
	}
}

// promqlKeywords are identifiers that are neither metrics nor functions.
var promqlKeywords = map[string]bool{
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "atan2": true,
	"inf": true, "nan": true, "start": true, "end": true,
}

// groupingKeywords take a parenthesised list of label names.
var groupingKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// tokenize splits a PromQL expression (with Grafana variables) into tokens.
func tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			var b strings.Builder
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && c != '`' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("%w at %d in %q", errUnterminated, i, s)
			}
			toks = append(toks, token{tString, b.String()})
			i = j + 1
		case c == '$':
			j := i + 1
			if j < len(s) && s[j] == '{' {
				for j < len(s) && s[j] != '}' {
					j++
				}
				j++
			} else {
				for j < len(s) && isIdentPart(s[j]) {
					j++
				}
			}
			toks = append(toks, token{tVar, s[i:min(j, len(s))]})
			i = j
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i
			for j < len(s) && (isIdentPart(s[j]) || s[j] == '.') {
				j++
			}
			toks = append(toks, token{tNumber, s[i:j]})
			i = j
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdentPart(s[j]) {
				j++
			}
			toks = append(toks, token{tIdent, s[i:j]})
			i = j
		default:
			if i+1 < len(s) {
				if two := s[i : i+2]; two == "=~" || two == "!~" || two == "!=" || two == "==" || two == ">=" || two == "<=" {
					toks = append(toks, token{tPunct, two})
					i += 2
					continue
				}
			}
			if !strings.ContainsRune("(){}[],=<>+-*/%^@:", rune(c)) {
				return nil, fmt.Errorf("%w %q at %d in %q", errUnexpected, c, i, s)
			}
			toks = append(toks, token{tPunct, string(c)})
			i++
		}
	}
	return toks, nil
}

// parsePromQL returns the selectors and grouping labels of expr.
func parsePromQL(expr string) (promqlRefs, error) {
	toks, err := tokenize(expr)
	if err != nil {
		return promqlRefs{}, err
	}
	var refs promqlRefs
	next := func(i int) token {
		if i+1 < len(toks) {
			return toks[i+1]
		}
		return token{}
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.kind == tPunct && t.text == "[":
			for i < len(toks) && !(toks[i].kind == tPunct && toks[i].text == "]") {
				i++
			}
			if i == len(toks) {
				return refs, fmt.Errorf("unclosed [ in %q", expr)
			}
		case t.kind == tPunct && t.text == "{":
			return refs, fmt.Errorf("a selector without a metric name in %q", expr)
		case t.kind == tIdent && groupingKeywords[t.text]:
			if n := next(i); n.kind != tPunct || n.text != "(" {
				if t.text == "group_left" || t.text == "group_right" {
					continue
				}
				return refs, fmt.Errorf("%s without a label list in %q", t.text, expr)
			}
			for i += 2; ; i++ {
				if i >= len(toks) {
					return refs, fmt.Errorf("unclosed %s ( in %q", t.text, expr)
				}
				if toks[i].kind == tPunct && toks[i].text == ")" {
					break
				}
				if toks[i].kind == tPunct && toks[i].text == "," {
					continue
				}
				if toks[i].kind != tIdent {
					return refs, fmt.Errorf("%s lists %q, not a label name, in %q", t.text, toks[i].text, expr)
				}
				refs.grouping = append(refs.grouping, toks[i].text)
			}
		case t.kind == tIdent && promqlKeywords[strings.ToLower(t.text)]:
		case t.kind == tIdent && promqlFunctions[t.text] && next(i).kind == tIdent && (next(i).text == "by" || next(i).text == "without"):
			// An aggregation with its clause first: sum by (job) (...).
		case t.kind == tIdent && next(i).kind == tPunct && next(i).text == "(":
			if !promqlFunctions[t.text] {
				return refs, fmt.Errorf("unknown function %s in %q", t.text, expr)
			}
		case t.kind == tIdent:
			sel := selector{metric: t.text}
			if n := next(i); n.kind == tPunct && n.text == "{" {
				var err error
				if sel.matchers, i, err = parseMatchers(toks, i+2, expr); err != nil {
					return refs, err
				}
			}
			refs.selectors = append(refs.selectors, sel)
		}
	}
	return refs, nil
}

// parseMatchers reads label matchers from toks[i] up to the closing brace and
// returns them with the index of that brace.
func parseMatchers(toks []token, i int, expr string) ([]matcher, int, error) {
	var ms []matcher
	for ; i < len(toks); i++ {
		if toks[i].kind == tPunct && toks[i].text == "}" {
			return ms, i, nil
		}
		if toks[i].kind == tPunct && toks[i].text == "," {
			continue
		}
		if i+2 >= len(toks) || toks[i].kind != tIdent || toks[i+1].kind != tPunct || toks[i+2].kind != tString {
			return nil, i, fmt.Errorf("bad label matcher at %q in %q", toks[i].text, expr)
		}
		switch op := toks[i+1].text; op {
		case "=", "!=", "=~", "!~":
			ms = append(ms, matcher{label: toks[i].text, op: op, value: toks[i+2].text})
		default:
			return nil, i, fmt.Errorf("bad matcher operator %q in %q", op, expr)
		}
		i += 2
	}
	return nil, i, fmt.Errorf("unclosed { in %q", expr)
}

// family is what /metrics says about one series name: its label names and,
// for each, the values seen.
type family struct {
	labels map[string]map[string]bool
}

// targetLabels are added by Prometheus to every scraped series.
var targetLabels = map[string]bool{"job": true, "instance": true}

// simpleAlternation is a regexp matcher value that lists plain label values.
var simpleAlternation = regexp.MustCompile(`^[a-z0-9_]+(\|[a-z0-9_]+)*$`)

// legendLabel is a label in a Grafana legend format: {{reason}}.
var legendLabel = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// checkExpr reports every metric, label and label value of expr that the
// families do not have. legend is a Grafana legend format ("{{reason}}"),
// whose labels must come from the expression's series too.
func checkExpr(fams map[string]family, expr, legend string) []error {
	refs, err := parsePromQL(expr)
	if err != nil {
		return []error{err}
	}
	if len(refs.selectors) == 0 {
		return []error{fmt.Errorf("no metric in %q", expr)}
	}
	var errs []error
	available := map[string]bool{"job": true, "instance": true}
	for _, sel := range refs.selectors {
		fam, ok := fams[sel.metric]
		if !ok {
			errs = append(errs, fmt.Errorf("metric %s does not exist (in %q)", sel.metric, expr))
			continue
		}
		for l := range fam.labels {
			available[l] = true
		}
		for _, m := range sel.matchers {
			if targetLabels[m.label] {
				continue
			}
			values, ok := fam.labels[m.label]
			if !ok {
				errs = append(errs, fmt.Errorf("metric %s has no label %s (in %q)", sel.metric, m.label, expr))
				continue
			}
			if strings.Contains(m.value, "$") || len(values) == 0 {
				continue
			}
			var want []string
			switch {
			case m.op == "=" || m.op == "!=":
				want = []string{m.value}
			case simpleAlternation.MatchString(m.value):
				want = strings.Split(m.value, "|")
			}
			for _, v := range want {
				if !values[v] {
					errs = append(errs, fmt.Errorf("metric %s has no series with %s=%q (in %q)", sel.metric, m.label, v, expr))
				}
			}
		}
	}
	for _, l := range refs.grouping {
		if !available[l] {
			errs = append(errs, fmt.Errorf("label %s of a by/on clause is on none of the metrics of %q", l, expr))
		}
	}
	for _, m := range legendLabel.FindAllStringSubmatch(legend, -1) {
		if !available[m[1]] {
			errs = append(errs, fmt.Errorf("legend %q names label %s, which the series of %q do not have", legend, m[1], expr))
		}
	}
	return errs
}
