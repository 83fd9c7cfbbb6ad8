// Package cli is what kerf's and kerfd's commands share in how they
// parse arguments and explain themselves: a flag set whose --help prints
// the command's usage on stdout and succeeds, usage errors that point at
// --help, and the exit status each outcome gets.
//
// It holds no command and imports no other Kerf package.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// ErrHelp is returned once a command has printed its usage because it was
// asked to (-h, --help, help): the program exits 0.
var ErrHelp = errors.New("usage shown")

// UsageError is a command line that does not parse: the program exits 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a *UsageError for cmd ("kerf run") that points at its
// --help.
func Usagef(cmd, format string, args ...any) error {
	return &UsageError{fmt.Errorf("%s: %s (see %s --help)", cmd, fmt.Sprintf(format, args...), cmd)}
}

// Command is one command's flag set and what its usage says.
type Command struct {
	*flag.FlagSet
	// Use is the command line's shape after the command's name.
	Use string
	// Summary says what the command does, in a line.
	Summary string
	// Stdout receives the usage when asked for; nil is os.Stdout.
	Stdout io.Writer
}

// New returns the command named name ("kerf tokens issue").
func New(name, use, summary string) *Command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, usage printed by Parse
	return &Command{FlagSet: fs, Use: use, Summary: summary}
}

// Parse parses args. Asked for help, it prints the usage and returns
// ErrHelp; a bad flag gives a *UsageError.
func (c *Command) Parse(args []string) error {
	err := c.FlagSet.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		c.PrintUsage()
		return ErrHelp
	}
	if err != nil {
		return Usagef(c.Name(), "%v", err)
	}
	return nil
}

// PrintUsage prints the usage line, the summary and the flags.
func (c *Command) PrintUsage() {
	w := c.Stdout
	if w == nil {
		w = os.Stdout
	}
	fmt.Fprintf(w, "usage: %s %s\n", c.Name(), c.Use)
	if c.Summary != "" {
		fmt.Fprintf(w, "\n%s\n", c.Summary)
	}
	n := 0
	c.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nflags:")
		c.SetOutput(w)
		c.PrintDefaults()
		c.SetOutput(io.Discard)
	}
}

// AskedForHelp reports whether args ask for help rather than name
// anything: the first is -h, -help, --help or help.
func AskedForHelp(args []string) bool {
	if len(args) == 0 {
		return false
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// Exit ends a program (prog: "kerf") after its command returned err:
// status 0 for nil or ErrHelp, 2 for a *UsageError, 1 for any other
// error, which is printed once with prog's name in front.
func Exit(prog string, err error) {
	var usage *UsageError
	switch {
	case err == nil, errors.Is(err, ErrHelp):
		os.Exit(0)
	case errors.As(err, &usage):
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
	os.Exit(1)
}
