package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/version"
)

// Versions is what `vigil version --json` prints.
type Versions struct {
	Vigil   string            `json:"vigil"`
	Go      string            `json:"go"`
	Engines map[string]string `json:"engines"`
}

// embedded lists the libraries whose versions `vigil version` reports.
var embedded = []struct{ name, module string }{
	{"gosec", "github.com/securego/gosec/v2"},
	{"syft", "github.com/anchore/syft"},
	{"go-containerregistry", "github.com/google/go-containerregistry"},
	{"cyclonedx-go", "github.com/CycloneDX/cyclonedx-go"},
}

func currentVersions() Versions {
	v := Versions{Vigil: version.Vigil(), Go: version.Go(), Engines: map[string]string{}}
	for _, e := range embedded {
		v.Engines[e.name] = version.Module(e.module, "unknown")
	}
	return v
}

func newVersionCmd(stdio Stdio) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print Vigil's version and the versions of the engines it embeds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := currentVersions()
			if asJSON {
				enc := json.NewEncoder(stdio.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "vigil\t%s\n", v.Vigil)
			fmt.Fprintf(tw, "go\t%s\n", v.Go)
			for _, e := range embedded {
				fmt.Fprintf(tw, "%s\t%s\n", e.name, v.Engines[e.name])
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the versions as JSON")
	return cmd
}
