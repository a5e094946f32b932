package cli

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/vigil-sec/vigil/reports/notify"
)

// vigil serve and vigil worker take every flag from three more places,
// with one rule (docs/serve.md):
//
//	the flag itself  >  $VIGIL_<FLAG>  >  the --config file's <flag> key  >  the default
//
// where <FLAG> is the flag's name upper-cased with '-' as '_' (--addr is
// $VIGIL_ADDR, --seal-key-file $VIGIL_SEAL_KEY_FILE) and the file's keys
// are the flags' names (YAML: `addr: ":8443"`, `outbound-allow:
// [10.0.0.0/8]`). Each value goes through the flag's own parser, so a bad
// one is refused as the flag would be, naming where it came from. viper
// reads the file (YAML, nested keys flattened with '.', keys folded to
// lower case) and the environment; it is already in the binary through
// syft, so it costs no module.

// configFlag is the flag that names the file, and print its effect.
const (
	configFlag      = "config"
	printConfigFlag = "print-config"
	envPrefix       = "VIGIL_"
)

// envName is a flag's environment variable.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// configSources says where each setting came from: "default", "flag",
// "$VIGIL_X" or "FILE".
type configSources map[string]string

// configurable gives a command --config and --print-config, and applies
// the environment and the file to its flags before it runs. shared
// returns the flags of every command that reads the same file (serve and
// worker): a key is one of their flags, and each command takes the keys
// it has and checks the others' values as their commands would.
func configurable(cmd *cobra.Command, stdio Stdio, shared func() []*pflag.FlagSet) {
	cmd.Flags().String(configFlag, "", "a YAML file of settings: its keys are the flags' names (addr, data, workers…); flags and $VIGIL_* override it (default $VIGIL_CONFIG)")
	cmd.Flags().Bool(printConfigFlag, false, "print the effective settings as YAML, secrets masked, with where each came from, and exit")
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		src, err := applyConfig(cmd.Flags(), shared())
		if err != nil {
			return err
		}
		if p, _ := cmd.Flags().GetBool(printConfigFlag); p {
			return printConfig(stdio.Out, cmd.Flags(), src)
		}
		return run(cmd, args)
	}
}

// skipConfig are flags no file or variable sets.
func skipConfig(name string) bool {
	return name == configFlag || name == printConfigFlag || name == "help"
}

// applyConfig sets every flag not given on the command line from its
// environment variable, else from the file's key. It returns where each
// setting came from.
func applyConfig(fl *pflag.FlagSet, shared []*pflag.FlagSet) (configSources, error) {
	src := configSources{}
	file, _ := fl.GetString(configFlag)
	if !fl.Changed(configFlag) {
		file = os.Getenv(envName(configFlag))
	}
	v := viper.New()
	inFile := map[string]bool{}
	if file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, &usageError{fmt.Errorf("--config %s: %w", file, err)}
		}
		keys := v.AllKeys()
		slices.Sort(keys)
		for _, k := range keys {
			if err := checkKey(fl, shared, k, v.Get(k)); err != nil {
				return nil, &usageError{fmt.Errorf("%s: %w", file, err)}
			}
			inFile[k] = true
		}
	}
	var errs []error
	fl.VisitAll(func(f *pflag.Flag) {
		if skipConfig(f.Name) {
			return
		}
		switch env := envName(f.Name); {
		case f.Changed:
			src[f.Name] = "flag"
		case os.Getenv(env) != "":
			src[f.Name] = "$" + env
			if err := setFromEnv(fl, f, os.Getenv(env)); err != nil {
				errs = append(errs, &usageError{fmt.Errorf("$%s: %w", env, err)})
			}
		case inFile[f.Name]:
			src[f.Name] = file
			if err := setFromFile(fl, f, v.Get(f.Name)); err != nil {
				errs = append(errs, &usageError{fmt.Errorf("%s: key %s: %w", file, f.Name, err)})
			}
		default:
			src[f.Name] = "default"
		}
	})
	if len(errs) > 0 {
		return nil, errs[0] // one at a time, as flags are
	}
	return src, nil
}

// checkKey refuses a key that is no flag of the commands sharing the
// file, one without a value, and, for a key of another command, a value
// that command would refuse.
func checkKey(fl *pflag.FlagSet, shared []*pflag.FlagSet, key string, val any) error {
	if skipConfig(key) {
		return fmt.Errorf("key %s: a file cannot name another", key)
	}
	if val == nil {
		return fmt.Errorf("key %s: no value: give one, or remove the key for the default", key)
	}
	if fl.Lookup(key) != nil {
		return nil // set below, in its turn
	}
	for _, other := range shared {
		if f := other.Lookup(key); f != nil {
			if err := setFromFile(other, f, val); err != nil {
				return fmt.Errorf("key %s: %w", key, err)
			}
			return nil
		}
	}
	return fmt.Errorf("unknown key %q: the keys are the flags of vigil serve and vigil worker (vigil serve --help), like addr, data, workers", key)
}

// isList reports whether a flag takes a list (repeated, or
// comma-separated).
func isList(f *pflag.Flag) bool {
	return strings.HasSuffix(f.Value.Type(), "Slice") || strings.HasSuffix(f.Value.Type(), "Array")
}

// setFromEnv sets a flag from its variable: a list flag's items are
// comma-separated.
func setFromEnv(fl *pflag.FlagSet, f *pflag.Flag, s string) error {
	if !isList(f) {
		return fl.Set(f.Name, s)
	}
	for _, item := range strings.Split(s, ",") {
		if err := fl.Set(f.Name, strings.TrimSpace(item)); err != nil {
			return err
		}
	}
	return nil
}

// setFromFile sets a flag from the file's value: a scalar, or a list for a
// list flag.
func setFromFile(fl *pflag.FlagSet, f *pflag.Flag, val any) error {
	var items []any
	switch v := val.(type) {
	case nil:
		return errors.New("no value: give one, or remove the key for the default")
	case map[string]any:
		return errors.New("a mapping: want a value")
	case []any:
		if !isList(f) {
			return fmt.Errorf("a list: --%s takes one value", f.Name)
		}
		items = v
	default:
		items = []any{v}
	}
	if len(items) == 0 && isList(f) {
		// An empty list: none (the default may hold some).
		return f.Value.(pflag.SliceValue).Replace(nil)
	}
	for _, it := range items {
		s, err := scalar(it)
		if err != nil {
			return err
		}
		if err := fl.Set(f.Name, s); err != nil {
			return err
		}
	}
	return nil
}

// scalar is a YAML scalar as the flag's text.
func scalar(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case time.Time: // an unquoted date
		return v.Format(time.RFC3339), nil
	}
	return "", fmt.Errorf("%v: want a string, a number or a boolean", v)
}

// secretFlags are masked by --print-config: their values are, or hold,
// credentials. A key file's path is shown (never its content).
var secretFlags = map[string]func(string) string{
	"registry-token": func(string) string { return masked },
	"smtp-url":       notify.Redact,
	"database":       redactDSN,
}

const masked = "********"

// printConfig prints the settings as YAML, one key per flag, with where
// each came from as a comment; secrets masked.
func printConfig(w io.Writer, fl *pflag.FlagSet, src configSources) error {
	doc := &yaml.Node{Kind: yaml.MappingNode}
	fl.VisitAll(func(f *pflag.Flag) {
		if skipConfig(f.Name) {
			return
		}
		key := &yaml.Node{Kind: yaml.ScalarNode, Value: f.Name}
		val := settingNode(f)
		if mask, ok := secretFlags[f.Name]; ok && f.Value.String() != "" {
			val = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: mask(f.Value.String())}
		}
		val.LineComment = src[f.Name]
		doc.Content = append(doc.Content, key, val)
	})
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	return enc.Close()
}

// settingNode is a flag's value as YAML of its type.
func settingNode(f *pflag.Flag) *yaml.Node {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, s := range sv.GetSlice() {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s})
		}
		return n
	}
	tag := "!!str"
	switch f.Value.Type() {
	case "bool":
		tag = "!!bool"
	case "int", "int64", "uint", "uint64":
		tag = "!!int"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: f.Value.String()}
}

// redactDSN hides a database URL's password, in its user part or its
// query.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return masked
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// sharedFlags are the flags of the commands that read one --config
// file: serve and worker (fresh, so that checking a value sets nothing).
func sharedFlags() []*pflag.FlagSet {
	return []*pflag.FlagSet{newServeCmd(Stdio{}).Flags(), newWorkerCmd(Stdio{}).Flags()}
}
