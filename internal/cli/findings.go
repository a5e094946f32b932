package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/server"
)

// newFindingsCmd returns `vigil findings`: a project's tracked findings on
// a running server.
func newFindingsCmd(stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "findings",
		Short: "The tracked findings of a project on a running Vigil server",
		Long: `The findings a running Vigil server tracks across a project's commits
(scope scans:read): open, waived, fixed. The server and the credentials
are --server / $VIGIL_SERVER and $VIGIL_CLIENT_ID / $VIGIL_CLIENT_SECRET,
or what vigil login saved.`,
		Args: cobra.NoArgs,
	}
	var (
		sf                     serverFlags
		project, state, cursor string
		limit                  int
		asJSON                 bool
	)
	list := &cobra.Command{
		Use:   "list --project NAME [--state open|waived|fixed] [--limit N] [--cursor C]",
		Short: "One page of a project's findings (the next page's cursor is printed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if project == "" {
				return &usageError{errors.New("--project is required")}
			}
			q := url.Values{"project": {project}}
			if state != "" {
				q.Set("state", state)
			}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			out, err := sf.call(cmd.Context(), server.ScopeScansRead, "GET", "/api/v1/findings?"+q.Encode(), nil)
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(stdio.Out, out)
			}
			var page struct {
				Findings   []server.Finding `json:"findings"`
				NextCursor string           `json:"next_cursor"`
			}
			if err := json.Unmarshal(out, &page); err != nil {
				return fmt.Errorf("the server's list of findings is not JSON: %w", err)
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STATE\tSEVERITY\tRULE\tLOCATION\tFIRST SEEN\tFINGERPRINT\tMESSAGE")
			for _, f := range page.Findings {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s:%d\t%s\t%s\t%s\n", f.State, f.Severity, f.RuleID, f.File, f.Line,
					short(f.FirstSeen.Commit), short(f.Fingerprint), f.Message)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.NextCursor != "" {
				fmt.Fprintf(stdio.Out, "more: --cursor %s\n", page.NextCursor)
			}
			return nil
		},
	}
	sf.register(list)
	fl := list.Flags()
	fl.StringVar(&project, "project", "", "the project (required)")
	fl.StringVar(&state, "state", "", "only findings in this state: open, waived or fixed")
	fl.IntVar(&limit, "limit", 100, "findings per page")
	fl.StringVar(&cursor, "cursor", "", "the page after the one that printed this cursor")
	fl.BoolVar(&asJSON, "json", false, "print the API's JSON as it came")
	cmd.AddCommand(list)
	for _, c := range cmd.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return cmd
}

// newWaiversCmd returns `vigil waivers`: the waivers made through the API
// of a running server.
func newWaiversCmd(stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "waivers",
		Short: "Make, list and delete the waivers of projects on a running Vigil server",
		Long: `Make, list and delete the waivers of projects on a running Vigil server
(scope projects:admin to make and delete, scans:read to list). A waiver
suppresses the findings it covers (a rule, a path glob, a fingerprint) until
the end of its --expires day (UTC), with an owner and a reason; the gate
names it when it lapses.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newWaiversCreateCmd(stdio), newWaiversListCmd(stdio), newWaiversDeleteCmd(stdio))
	for _, c := range cmd.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return cmd
}

func newWaiversCreateCmd(stdio Stdio) *cobra.Command {
	var (
		sf                                                      serverFlags
		project, rule, path, fingerprint, owner, reason, expire string
		asJSON                                                  bool
	)
	cmd := &cobra.Command{
		Use:   "create --project NAME (--rule ID | --path GLOB | --finding FINGERPRINT)... --owner WHO --reason WHY --expires DATE",
		Short: "Make a waiver",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := map[string]any{"project": project, "rule": rule, "path": path, "fingerprint": fingerprint,
				"owner": owner, "reason": reason, "expires": expire}
			out, err := sf.call(cmd.Context(), server.ScopeProjectsAdmin, "POST", "/api/v1/waivers", body)
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(stdio.Out, out)
			}
			var wv server.Waiver
			if err := json.Unmarshal(out, &wv); err != nil {
				return fmt.Errorf("the server's waiver is not JSON: %w", err)
			}
			fmt.Fprintf(stdio.Out, "waiver %s of %s, owned by %s, through %s\n", wv.ID, wv.Project, wv.Owner, wv.Expires)
			return nil
		},
	}
	sf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&project, "project", "", "the project")
	fl.StringVar(&rule, "rule", "", "the rule it covers (G404)")
	fl.StringVar(&path, "path", "", "the files it covers, a glob (internal/legacy/**)")
	fl.StringVar(&fingerprint, "finding", "", "the one finding it covers, by its fingerprint (--fingerprint is the server certificate's)")
	fl.StringVar(&owner, "owner", "", "who answers for it")
	fl.StringVar(&reason, "reason", "", "why")
	fl.StringVar(&expire, "expires", "", "the last day it applies (YYYY-MM-DD, UTC)")
	fl.BoolVar(&asJSON, "json", false, "print the API's JSON as it came")
	return cmd
}

func newWaiversListCmd(stdio Stdio) *cobra.Command {
	var (
		sf      serverFlags
		project string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "list --project NAME",
		Short: "A project's waivers, expired ones included",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if project == "" {
				return &usageError{errors.New("--project is required")}
			}
			c, err := sf.client(server.ScopeScansRead)
			if err != nil {
				return err
			}
			items, err := c.listAll(cmd.Context(), "/api/v1/waivers?project="+url.QueryEscape(project), "waivers")
			if err != nil {
				return err
			}
			if asJSON {
				b, err := json.Marshal(map[string]any{"waivers": items, "next_cursor": ""})
				if err != nil {
					return err
				}
				return printRaw(stdio.Out, b)
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCOVERS\tOWNER\tEXPIRES\tACTIVE\tREASON")
			for _, raw := range items {
				var wv server.Waiver
				if err := json.Unmarshal(raw, &wv); err != nil {
					return fmt.Errorf("the server's waiver is not JSON: %w", err)
				}
				covers := ""
				for _, c := range []struct{ k, v string }{{"rule", wv.Rule}, {"path", wv.Path}, {"fingerprint", short(wv.Fingerprint)}} {
					if c.v != "" && c.v != "-" {
						covers += c.k + "=" + c.v + " "
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\n", wv.ID, covers, wv.Owner, wv.Expires, wv.Active, wv.Reason)
			}
			return tw.Flush()
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&project, "project", "", "the project (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"waivers": [...], "next_cursor": ""} as the API does`)
	return cmd
}

func newWaiversDeleteCmd(stdio Stdio) *cobra.Command {
	var sf serverFlags
	cmd := &cobra.Command{
		Use:   "delete WAIVER_ID",
		Short: "Delete a waiver: the findings it covered count again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := sf.call(cmd.Context(), server.ScopeProjectsAdmin, "DELETE", "/api/v1/waivers/"+url.PathEscape(args[0]), nil); err != nil {
				return err
			}
			fmt.Fprintf(stdio.Out, "deleted waiver %s\n", args[0])
			return nil
		},
	}
	sf.register(cmd)
	return cmd
}
