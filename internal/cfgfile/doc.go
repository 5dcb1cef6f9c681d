// Package cfgfile fills a command's flags from a YAML config file and
// from environment variables, so that a service can be configured the
// way operators expect while the flags stay the one definition of every
// setting.
//
// The file is one YAML mapping whose keys are the long flag names
// ("data-dir: /var/lib/x"); a repeatable flag takes a list (a single
// value is a list of one). The environment variable of a flag is a prefix
// plus its name in upper case with "_" for "-" (PETREL_DATA_DIR); a
// repeatable flag's is comma-separated. Load works on any pflag.FlagSet
// by walking its flags and setting them through pflag, so a flag added to
// the command is a setting with no code here.
//
// Precedence: the file is the base, flags given on the command line
// override it, the environment overrides both. Problems name the file,
// line and key (or the variable), and all of them are reported at once.
//
// Imported by the cmd/ packages only; components receive the typed config
// built from the flags, never this package's results. Nothing here keeps
// state or starts goroutines; Load is called once per process from the
// command's goroutine, after cobra has parsed the command line.
package cfgfile
