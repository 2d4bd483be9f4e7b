package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// OutputFlag defines -o/--output on cmd with the values its shell
// completion offers; RunE checks the value with OneOf.
func OutputFlag(cmd *cobra.Command, p *string, def, usage string, values ...string) {
	cmd.Flags().StringVarP(p, "output", "o", def, usage)
	CompleteFlag(cmd, "output", values...)
}

// CompleteFlag makes shell completion of flag offer values (and no file
// names).
func CompleteFlag(cmd *cobra.Command, flag string, values ...string) {
	// The only error is an unknown flag: a programming error caught by tests.
	if err := cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)); err != nil {
		panic(err)
	}
}

// OneOf is a usage error unless value is one of allowed ("" among them
// means the flag may be left unset, and is not listed).
func OneOf(flag, value string, allowed ...string) error {
	var names []string
	for _, a := range allowed {
		if value == a {
			return nil
		}
		if a != "" {
			names = append(names, a)
		}
	}
	return Usagef("%s %q: want %s", flag, value, orList(names))
}

// orList is "a", "a or b", "a, b or c".
func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return fmt.Sprintf("%s or %s", strings.Join(s[:len(s)-1], ", "), s[len(s)-1])
}
