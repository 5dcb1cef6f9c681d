package cfgfile

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// Options tell Load which flags are settings and where the environment is.
type Options struct {
	// EnvPrefix starts every setting's environment variable, e.g.
	// "PETREL_": the variable of --data-dir is then PETREL_DATA_DIR.
	EnvPrefix string
	// Environ is the environment as os.Environ returns it.
	Environ []string
	// Skip reports flags that are not settings: the flag naming the file
	// itself, --help. Nil: every flag is a setting.
	Skip func(*pflag.Flag) bool
}

// Kind is where a setting's effective value came from.
type Kind int

// The sources, in increasing precedence.
const (
	Default Kind = iota
	FromFile
	CommandLine
	FromEnv
)

// Origin says where a setting's effective value came from.
type Origin struct {
	Kind Kind
	File string // FromFile
	Line int    // FromFile
	Env  string // FromEnv: the variable
}

func (o Origin) String() string {
	switch o.Kind {
	case FromFile:
		return fmt.Sprintf("%s:%d", o.File, o.Line)
	case CommandLine:
		return "command line"
	case FromEnv:
		return "$" + o.Env
	}
	return "default"
}

// Result is what Load did.
type Result struct {
	// Origins has every setting's source, by flag name.
	Origins map[string]Origin
	// Warnings are for the operator (stderr), such as an environment
	// variable that looks like a misspelt setting; they are not errors.
	Warnings []string
}

// EnvName is the environment variable of the flag name: prefix, then
// the name in upper case with "-" as "_".
func EnvName(prefix, name string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// IsList reports whether fl takes a list (a repeatable flag): a YAML
// list in the file, a comma-separated list in the environment.
func IsList(fl *pflag.Flag) bool {
	_, ok := fl.Value.(pflag.SliceValue)
	return ok
}

// Load reads the config file at path ("" for none) and the environment
// into fs, whose command line has already been parsed: the file's values
// apply to the flags the command line left alone, and the environment's
// override both. Every problem is reported, as joined *Problem errors in
// file order then environment order; flags named in problems keep their
// earlier values. A file that cannot be read is an error wrapping
// ErrUnreadable, and then nothing is changed.
func Load(fs *pflag.FlagSet, path string, opt Options) (*Result, error) {
	var (
		f    *File
		errs []error
	)
	if path != "" {
		var err error
		f, err = Read(path)
		if errors.Is(err, ErrUnreadable) {
			return nil, err
		}
		errs = append(errs, err)
	}
	res, err := Apply(fs, f, opt)
	return res, sortProblems(errors.Join(append(errs, err)...))
}

// Apply is Load with the file already parsed (f may be nil).
func Apply(fs *pflag.FlagSet, f *File, opt Options) (*Result, error) {
	res := &Result{Origins: map[string]Origin{}}
	settings := map[string]*pflag.Flag{}
	var visible []string // for suggestions: hidden flags are accepted, not advertised
	fs.VisitAll(func(fl *pflag.Flag) {
		if opt.Skip != nil && opt.Skip(fl) {
			return
		}
		settings[fl.Name] = fl
		if !fl.Hidden {
			visible = append(visible, fl.Name)
		}
		if fl.Changed {
			res.Origins[fl.Name] = Origin{Kind: CommandLine}
		} else {
			res.Origins[fl.Name] = Origin{Kind: Default}
		}
	})
	// The command line wins over the file, but the file is checked whole:
	// its values are set, then the command line's put back.
	cmdline := map[string][]string{}
	for name, fl := range settings {
		if fl.Changed {
			cmdline[name] = current(fl)
		}
	}
	var errs []error
	touched := map[string]bool{}
	if f != nil {
		for _, e := range f.Entries {
			fl, ok := settings[e.Key]
			if !ok {
				errs = append(errs, &Problem{File: f.Name, Line: e.Line, Key: e.Key, Msg: unknownKey(e.Key, visible)})
				continue
			}
			if e.Null {
				continue
			}
			touched[e.Key] = true
			if err := set(fs, fl, e.Values, e.List); err != nil {
				errs = append(errs, &Problem{File: f.Name, Line: e.Line, Key: e.Key, Msg: fmt.Sprintf("key %q: %v", e.Key, err)})
				continue
			}
			if _, ok := cmdline[e.Key]; !ok {
				res.Origins[e.Key] = Origin{Kind: FromFile, File: f.Name, Line: e.Line}
			}
		}
	}
	for name, vals := range cmdline {
		if !touched[name] {
			continue
		}
		// pflag's values print in the form their Set parses.
		if err := set(fs, settings[name], vals, IsList(settings[name])); err != nil {
			errs = append(errs, fmt.Errorf("restore --%s from the command line: %w", name, err))
		}
	}
	errs = append(errs, applyEnv(fs, settings, visible, opt, res)...)
	return res, errors.Join(errs...)
}

// applyEnv sets the flags named by prefixed environment variables.
func applyEnv(fs *pflag.FlagSet, settings map[string]*pflag.Flag, visible []string, opt Options, res *Result) []error {
	if opt.EnvPrefix == "" {
		return nil
	}
	var errs []error
	env := slices.Clone(opt.Environ)
	slices.Sort(env)
	for _, kv := range env {
		name, val, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, opt.EnvPrefix) {
			continue
		}
		key := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, opt.EnvPrefix), "_", "-"))
		fl, ok := settings[key]
		if !ok || EnvName(opt.EnvPrefix, key) != name {
			// Other programs' variables share the prefix (the agent's);
			// only near misses of ours are worth a word.
			if s := closest(key, visible); s != "" {
				res.Warnings = append(res.Warnings, fmt.Sprintf("environment variable %s ignored: no such setting (did you mean %s?)", name, EnvName(opt.EnvPrefix, s)))
			}
			continue
		}
		if val == "" {
			continue // set but empty: as if unset (systemd's "VAR=")
		}
		vals := []string{val}
		if IsList(fl) {
			vals = vals[:0]
			for _, v := range strings.Split(val, ",") {
				if v = strings.TrimSpace(v); v != "" {
					vals = append(vals, v)
				}
			}
		}
		if err := set(fs, fl, vals, false); err != nil {
			errs = append(errs, &Problem{Key: name, Msg: fmt.Sprintf("%s: %v", name, err)})
			continue
		}
		res.Origins[key] = Origin{Kind: FromEnv, Env: name}
	}
	return errs
}

// set gives fl the values: a list replaces a repeatable flag's values
// whole; a scalar flag takes one value and no list.
func set(fs *pflag.FlagSet, fl *pflag.Flag, vals []string, list bool) error {
	if sv, ok := fl.Value.(pflag.SliceValue); ok {
		if err := sv.Replace(vals); err != nil { // pflag's replace only on success
			return fmt.Errorf("bad list %q: %w", vals, err)
		}
		fl.Changed = true
		return nil
	}
	if list {
		return errors.New("want a single value, not a list")
	}
	old := fl.Value.String()
	if err := fs.Set(fl.Name, vals[0]); err != nil {
		_ = fl.Value.Set(old) // some values are clobbered by a failed Set
		hint := map[string]string{"duration": " (e.g. 90s, 10m, 24h)", "bool": " (true or false)"}[fl.Value.Type()]
		return fmt.Errorf("%q is not a valid %s%s", vals[0], fl.Value.Type(), hint)
	}
	return nil
}

// current is fl's value in the form set takes.
func current(fl *pflag.Flag) []string {
	if sv, ok := fl.Value.(pflag.SliceValue); ok {
		return slices.Clone(sv.GetSlice())
	}
	return []string{fl.Value.String()}
}

func unknownKey(key string, names []string) string {
	msg := fmt.Sprintf("unknown key %q", key)
	if s := closest(key, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg
}

// sortProblems orders the *Problem errors in err by file and line, the
// environment's last (by variable), keeping any others in front.
func sortProblems(err error) error {
	if err == nil {
		return nil
	}
	var all []error
	var flatten func(error)
	flatten = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				flatten(e)
			}
			return
		}
		all = append(all, e)
	}
	flatten(err)
	rank := func(e error) (int, string, int, string) {
		var p *Problem
		if !errors.As(e, &p) {
			return 0, "", 0, ""
		}
		if p.File == "" {
			return 2, "", 0, p.Key
		}
		return 1, p.File, p.Line, ""
	}
	slices.SortStableFunc(all, func(a, b error) int {
		ka, fa, la, ea := rank(a)
		kb, fb, lb, eb := rank(b)
		return cmp.Or(cmp.Compare(ka, kb), cmp.Compare(fa, fb), cmp.Compare(la, lb), cmp.Compare(ea, eb))
	})
	return errors.Join(all...)
}
