package config

import "fmt"

// Error is a configuration error: one variable and what is wrong with it.
// Its message never contains the value of a secret.
type Error struct {
	Var string // the environment variable, e.g. DATACORE_QOS
	Msg string // what is wrong and, where it helps, what to do
	Err error  // the underlying error, if any (e.g. reading a file)
}

// Error returns one line that starts with the variable name, e.g.
// `DATACORE_QOS: must be 0 or 1, got "2"`.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Var + ": " + e.Msg + ": " + e.Err.Error()
	}
	return e.Var + ": " + e.Msg
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// errorf returns a *Error for the variable name with a formatted message.
func errorf(name, format string, args ...any) *Error {
	return &Error{Var: name, Msg: fmt.Sprintf(format, args...)}
}
