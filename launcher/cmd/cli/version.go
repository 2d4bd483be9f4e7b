package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/fedscale/fedscale-go/runtime/version"
)

// VersionCommand is `NAME version [-o json|yaml]`: the release, commit, Go
// version and platform of this binary. (-v/--version on the root prints the
// release alone, as cobra does.)
func VersionCommand(root string, stdout io.Writer) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit, Go version and platform of this binary",
		Example: "  " + root + " version\n  " + root + " version -o json   # one JSON object",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := OneOf("-o", output, "", "json", "yaml"); err != nil {
				return err
			}
			return PrintVersion(stdout, output, version.Get())
		},
	}
	OutputFlag(cmd, &output, "", "output format: json or yaml (default: text)", "json", "yaml")
	return cmd
}

// PrintVersion writes i as text (output ""), one JSON object or YAML.
func PrintVersion(w io.Writer, output string, i version.Info) error {
	if output != "" {
		return Encode(w, output, i)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "Version:\t%s\nCommit:\t%s\nGo version:\t%s\nPlatform:\t%s\n", i.Version, i.Commit, i.GoVersion, i.Platform)
	return tw.Flush()
}

// Encode writes v as indented JSON (output "json") or YAML (any other), as
// every -o json|yaml of these commands prints.
func Encode(w io.Writer, output string, v any) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	data, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}
