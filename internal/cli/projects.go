package cli

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/server"
)

// newProjectsCmd returns `vigil projects`: the projects of a running
// server, through its Management API (the server seals secrets and
// schedules rescans, so these commands do not write the store
// themselves). --json prints the API's JSON as it answered.
func newProjectsCmd(stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "projects",
		Short: "Manage the projects of a running Vigil server",
		Long: `Manage the projects of a running Vigil server through its Management API.

The server is --server or $VIGIL_SERVER; the client credentials come from
VIGIL_CLIENT_ID and VIGIL_CLIENT_SECRET (a client with scope projects:admin,
or scans:read for list, get and policy get). A server with a self-signed
certificate is trusted with --ca-cert or --fingerprint, as for vigil gate.

Exit codes: 0 done; 2 bad usage, or the server refused the input (unknown
project, invalid field, conflict); 3 the server could not be reached or
answered another error.`,
		Args: cobra.NoArgs,
	}
	policy := &cobra.Command{Use: "policy", Short: "Read and set a project's gate policy (each set is a new version)", Args: cobra.NoArgs}
	policy.AddCommand(newPolicySetCmd(stdio), newPolicyGetCmd(stdio))
	cmd.AddCommand(newProjectsCreateCmd(stdio), newProjectsListCmd(stdio), newProjectsGetCmd(stdio),
		newProjectsUpdateCmd(stdio), newProjectsDeleteCmd(stdio), newProjectsRotateCmd(stdio), policy)
	for _, c := range append(cmd.Commands(), policy.Commands()...) {
		c.Args = wrapArgs(c.Args)
	}
	return cmd
}

// projectPath is the API path of a project.
func projectPath(name string) string { return "/api/v1/projects/" + url.PathEscape(name) }

// readSecretFile reads a secret from a file ("-" is stdin), without its
// trailing newline.
func readSecretFile(stdio Stdio, flag, path string) (string, error) {
	var (
		b   []byte
		err error
	)
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(stdio.In, 64<<10))
	} else {
		b, err = os.ReadFile(path) // #nosec G304 -- a file the user names
	}
	if err != nil {
		return "", &usageError{fmt.Errorf("--%s: %w", flag, err)}
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", &usageError{fmt.Errorf("--%s: %s is empty", flag, path)}
	}
	return s, nil
}

// printProject prints a project of the API in words.
func printProject(w io.Writer, p server.Project) {
	fmt.Fprintf(w, "project %s (%s)\n", p.Name, p.ID)
	fmt.Fprintf(w, "  repo_url:       %s\n  default_branch: %s\n", p.RepoURL, p.DefaultBranch)
	if p.Schedule != "" {
		fmt.Fprintf(w, "  schedule:       %s\n", p.Schedule)
	}
	if p.PolicyVersion > 0 {
		fmt.Fprintf(w, "  policy:         version %d\n", p.PolicyVersion)
	} else {
		fmt.Fprintf(w, "  policy:         the default policy\n")
	}
	if p.Forge != nil {
		fmt.Fprintf(w, "  forge:          %s\n", p.Forge.URL)
	}
	if len(p.Products) > 0 {
		fmt.Fprintf(w, "  products:       %s\n", strings.Join(p.Products, ", "))
	}
	if p.Production {
		fmt.Fprintf(w, "  production:     yes (its default branch goes into its products' releases)\n")
	}
	fmt.Fprintf(w, "  created:        %s\n", p.CreatedAt.UTC().Format(time.RFC3339))
}

// projectFieldFlags are the settings create and update share.
type projectFieldFlags struct {
	repoURL, branch, schedule string
	forgeURL, forgeTokenFile  string
}

func (f *projectFieldFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.repoURL, "repo", "", "the repository's URL (https://, ssh://, git@host:path or file://)")
	fl.StringVar(&f.branch, "branch", "", "the default branch (default main at creation)")
	fl.StringVar(&f.schedule, "schedule", "", `when to rescan: a cron spec like "0 3 * * *", or @daily, @every 6h; "" for none`)
	fl.StringVar(&f.forgeURL, "forge-url", "", "the forge's API base for commit statuses, like https://api.github.com (with --forge-token-file)")
	fl.StringVar(&f.forgeTokenFile, "forge-token-file", "", `file holding the forge token ("-" for stdin)`)
}

// forge reads the forge flags: nil without --forge-url.
func (f *projectFieldFlags) forge(stdio Stdio) (map[string]any, error) {
	switch {
	case f.forgeURL == "" && f.forgeTokenFile == "":
		return nil, nil
	case f.forgeURL == "" || f.forgeTokenFile == "":
		return nil, &usageError{errors.New("--forge-url and --forge-token-file go together")}
	}
	tok, err := readSecretFile(stdio, "forge-token-file", f.forgeTokenFile)
	if err != nil {
		return nil, err
	}
	return map[string]any{"url": f.forgeURL, "token": tok}, nil
}

func newProjectsCreateCmd(stdio Stdio) *cobra.Command {
	var (
		sf                     serverFlags
		pf                     projectFieldFlags
		secretFile, policyFile string
		asJSON                 bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME --repo URL [flags]",
		Short: "Make a project; without --webhook-secret-file, a random webhook secret is made and printed once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if pf.repoURL == "" {
				return &usageError{errors.New("--repo is required")}
			}
			body := map[string]any{"name": args[0], "repo_url": pf.repoURL, "default_branch": pf.branch, "schedule": pf.schedule}
			forge, err := pf.forge(stdio)
			if err != nil {
				return err
			}
			if forge != nil {
				body["forge"] = forge
			}
			secret, made := "", false
			if secretFile != "" {
				if secret, err = readSecretFile(stdio, "webhook-secret-file", secretFile); err != nil {
					return err
				}
			} else {
				secret, made = rand.Text(), true
			}
			body["webhook_secret"] = secret
			if policyFile != "" {
				b, err := readPolicyFile(policyFile)
				if err != nil {
					return err
				}
				body["policy"] = string(b)
			}
			out, err := sf.call(cmd.Context(), server.ScopeProjectsAdmin, "POST", "/api/v1/projects", body)
			if err != nil {
				return err
			}
			if asJSON {
				if made {
					fmt.Fprintf(stdio.Err, "webhook secret (shown only now): %s\n", secret)
				}
				return printRaw(stdio.Out, out)
			}
			var p server.Project
			if err := json.Unmarshal(out, &p); err != nil {
				return err
			}
			printProject(stdio.Out, p)
			if made {
				fmt.Fprintf(stdio.Out, "webhook secret: %s\n(shown only now: set it in the forge's webhook, POST /hooks/{github|gitlab|generic}/%s)\n", secret, p.Name)
			}
			return nil
		},
	}
	sf.register(cmd)
	pf.register(cmd)
	cmd.Flags().StringVar(&secretFile, "webhook-secret-file", "", `file holding the webhook secret, 16 to 256 characters ("-" for stdin)`)
	cmd.Flags().StringVar(&policyFile, "policy", "", "a policy file (YAML), the project's first policy version")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the project as the API answers it (a made webhook secret goes to stderr)")
	return cmd
}

func newProjectsListCmd(stdio Stdio) *cobra.Command {
	var (
		sf     serverFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the projects, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client(server.ScopeScansRead)
			if err != nil {
				return err
			}
			all, err := c.listAll(cmd.Context(), "/api/v1/projects", "projects")
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdio.Out, map[string]any{"projects": all, "next_cursor": ""})
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tREPO\tBRANCH\tSCHEDULE\tPOLICY\tPRODUCTS\tCREATED")
			for _, raw := range all {
				var p server.Project
				if err := json.Unmarshal(raw, &p); err != nil {
					return err
				}
				products := strings.Join(p.Products, ",")
				if p.Production {
					products += " (production)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.RepoURL, p.DefaultBranch, p.Schedule,
					policyVersionText(p.PolicyVersion), strings.TrimSpace(products), p.CreatedAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"projects": [...], "next_cursor": ""} as the API does`)
	return cmd
}

func policyVersionText(v int) string {
	if v == 0 {
		return "default"
	}
	return "v" + strconv.Itoa(v)
}

func newProjectsGetCmd(stdio Stdio) *cobra.Command {
	var (
		sf     serverFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a project",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := sf.call(cmd.Context(), server.ScopeScansRead, "GET", projectPath(args[0]), nil)
			if err != nil {
				return err
			}
			return printProjectAnswer(stdio, out, asJSON)
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the project as the API answers it")
	return cmd
}

func printProjectAnswer(stdio Stdio, out []byte, asJSON bool) error {
	if asJSON {
		return printRaw(stdio.Out, out)
	}
	var p server.Project
	if err := json.Unmarshal(out, &p); err != nil {
		return err
	}
	printProject(stdio.Out, p)
	return nil
}

func newProjectsUpdateCmd(stdio Stdio) *cobra.Command {
	var (
		sf          serverFlags
		pf          projectFieldFlags
		removeForge bool
		products    []string
		production  bool
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "update NAME [--repo URL] [--branch B] [--schedule S] [--forge-url U --forge-token-file F | --remove-forge] [--product ID]... [--production[=false]]",
		Short: "Change a project's settings: only the flags given change",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			body := map[string]any{}
			for flag, field := range map[string]string{"repo": "repo_url", "branch": "default_branch", "schedule": "schedule"} {
				if fl.Changed(flag) {
					v, _ := fl.GetString(flag)
					body[field] = v
				}
			}
			forge, err := pf.forge(stdio)
			if err != nil {
				return err
			}
			switch {
			case forge != nil && removeForge:
				return &usageError{errors.New("give --forge-url and --forge-token-file, or --remove-forge, not both")}
			case forge != nil:
				body["forge"] = forge
			case removeForge:
				body["forge"] = nil
			}
			if fl.Changed("product") {
				ids, err := productFlags(products)
				if err != nil {
					return err
				}
				body["products"] = ids
			}
			if fl.Changed("production") {
				body["production"] = production
			}
			if len(body) == 0 {
				return &usageError{errors.New("nothing to change: give --repo, --branch, --schedule, --forge-url with --forge-token-file, --remove-forge, --product or --production")}
			}
			out, err := sf.call(cmd.Context(), server.ScopeProjectsAdmin, "PATCH", projectPath(args[0]), body)
			if err != nil {
				return err
			}
			return printProjectAnswer(stdio, out, asJSON)
		},
	}
	sf.register(cmd)
	pf.register(cmd)
	cmd.Flags().BoolVar(&removeForge, "remove-forge", false, "remove the project's forge: no more commit statuses")
	cmd.Flags().StringArrayVar(&products, "product", nil, "the ID of a licensing product the project ships in (repeatable: the list replaces the project's; --product '' removes them all)")
	cmd.Flags().BoolVar(&production, "production", false, "put the project's default branch in its products' releases when a release names no project (--production=false to stop)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the project as the API answers it")
	return cmd
}

// productFlags are the product IDs of repeated --product flags: a single
// empty one is the empty list.
func productFlags(flags []string) ([]string, error) {
	ids := []string{}
	for _, id := range flags {
		if id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) > 0 && len(ids) < len(flags) {
		return nil, &usageError{errors.New("--product '' removes every product: do not give it with product IDs")}
	}
	return ids, nil
}

func newProjectsDeleteCmd(stdio Stdio) *cobra.Command {
	var sf serverFlags
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a project with its policies, waivers, findings and scans (refused while a scan of it is queued or running)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := sf.call(cmd.Context(), server.ScopeProjectsAdmin, "DELETE", projectPath(args[0]), nil); err != nil {
				return err
			}
			fmt.Fprintf(stdio.Out, "deleted project %s\n", args[0])
			return nil
		},
	}
	sf.register(cmd)
	return cmd
}

func newProjectsRotateCmd(stdio Stdio) *cobra.Command {
	var (
		sf     serverFlags
		grace  time.Duration
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "rotate-secret NAME [--grace 24h]",
		Short: "Give a project a new random webhook secret, printed once; the old one works for --grace more",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if grace < 0 || grace > server.MaxSecretGrace || grace%time.Second != 0 {
				return &usageError{fmt.Errorf("--grace %s: want whole seconds from 0 to %s", grace, server.MaxSecretGrace)}
			}
			out, err := sf.call(cmd.Context(), server.ScopeProjectsAdmin, "POST", projectPath(args[0])+"/webhook-secret", map[string]any{"grace_seconds": int64(grace / time.Second)})
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(stdio.Out, out)
			}
			var r server.RotatedSecret
			if err := json.Unmarshal(out, &r); err != nil {
				return err
			}
			fmt.Fprintf(stdio.Out, "webhook secret: %s\n(shown only now: set it in the forge's webhook)\n", r.WebhookSecret)
			if r.PreviousValidUntil != nil {
				fmt.Fprintf(stdio.Out, "the previous secret works until %s\n", r.PreviousValidUntil.UTC().Format(time.RFC3339))
			} else {
				fmt.Fprintln(stdio.Out, "the previous secret no longer works")
			}
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().DurationVar(&grace, "grace", server.DefaultSecretGrace, "how long the replaced secret keeps working; 0 ends it now (a leaked secret)")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"webhook_secret", "previous_valid_until"} as the API answers`)
	return cmd
}

// readPolicyFile reads a policy file, bounded like the server bounds it.
func readPolicyFile(path string) ([]byte, error) {
	f, err := os.Open(path) // #nosec G304 -- a file the user names
	if err != nil {
		return nil, &usageError{fmt.Errorf("policy: %w", err)}
	}
	defer f.Close()
	const limit = 256 << 10
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &usageError{fmt.Errorf("policy: %w", err)}
	}
	if len(b) > limit {
		return nil, &usageError{fmt.Errorf("policy %s: larger than %d bytes", path, limit)}
	}
	return b, nil
}

func newPolicySetCmd(stdio Stdio) *cobra.Command {
	var (
		sf     serverFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "set NAME FILE",
		Short: "Make a policy file the project's policy: a new version, used by the gate at once",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := readPolicyFile(args[1])
			if err != nil {
				return err
			}
			out, err := sf.call(cmd.Context(), server.ScopeProjectsAdmin, "PUT", projectPath(args[0])+"/policy", map[string]any{"policy": string(b)})
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(stdio.Out, out)
			}
			var pv server.PolicyVersion
			if err := json.Unmarshal(out, &pv); err != nil {
				return err
			}
			fmt.Fprintf(stdio.Out, "project %s: policy version %d\n", pv.Project, pv.Version)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the policy version as the API answers it")
	return cmd
}

func newPolicyGetCmd(stdio Stdio) *cobra.Command {
	var (
		sf      serverFlags
		version int
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "get NAME [--version N]",
		Short: "Print a project's policy file (the current version, or --version)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version < 0 {
				return &usageError{errors.New("--version must be 1 or more")}
			}
			c, err := sf.client(server.ScopeScansRead)
			if err != nil {
				return err
			}
			path := projectPath(args[0]) + "/policy"
			if version > 0 {
				path += "?version=" + strconv.Itoa(version)
			}
			out, err := c.call(cmd.Context(), "GET", path, nil)
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(stdio.Out, out)
			}
			var pv server.PolicyVersion
			if err := json.Unmarshal(out, &pv); err != nil {
				return err
			}
			fmt.Fprintf(stdio.Err, "project %s: policy version %d of %s\n", pv.Project, pv.Version, pv.CreatedAt.UTC().Format(time.RFC3339))
			_, err = io.WriteString(stdio.Out, pv.Policy)
			return err
		},
	}
	sf.register(cmd)
	cmd.Flags().IntVar(&version, "version", 0, "an earlier version (default the current one)")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"project", "version", "policy", "created_at"} as the API answers`)
	return cmd
}
