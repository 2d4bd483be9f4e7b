package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fedscale/fedscale-go/builder/pins"
	"github.com/fedscale/fedscale-go/builder/publish"
)

func newPinCommand(f *flags, stdout io.Writer) *cobra.Command {
	var check bool
	cmd := &cobra.Command{
		Use:   "pin",
		Short: "Resolve the digests of the CUDA base images in " + pins.File,
		Long: `pin asks the registry for the current digest of every nvidia/cuda tag in
` + pins.File + ` and writes them into the file, so CUDA images are built on
exactly those bases until the next pin. With --check it changes nothing and
fails when a pin is missing or stale (for the release pipeline).`,
		Example: `  fsbuild pin            # where Docker Hub is reachable; then commit ` + pins.File + `
  fsbuild pin --check    # the release pipeline: fail on a missing or stale pin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			src, err := sourceDir(f.source)
			if err != nil {
				return err
			}
			path := filepath.Join(src, pins.File)
			p, err := pins.Load(path)
			if err != nil {
				return err
			}
			resolved, changed, err := pins.Resolve(cmd.Context(), publish.Registry{Insecure: f.insecureRegistries}, p)
			if err != nil {
				return err
			}
			for _, v := range resolved.Versions() {
				fmt.Fprintf(stdout, "cuda %s: %s\n", v, resolved.Bases[v].Ref())
			}
			if check {
				if len(changed) > 0 {
					return fmt.Errorf("%s is stale for CUDA %s: run \"fsbuild pin\" and commit it", pins.File, strings.Join(changed, ", "))
				}
				return nil
			}
			return pins.Save(path, resolved)
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "fail instead of writing when a pin is missing or stale")
	f.bindShared(cmd)
	return cmd
}
