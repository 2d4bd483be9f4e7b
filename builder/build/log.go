package build

import "github.com/sirupsen/logrus"

// QuietLibraries hides the warnings that BuildKit's and containerd's
// libraries log through logrus's global logger (e.g. "failed check for
// fsverity support" on every OCI export on filesystems without it);
// fsbuild reports errors itself. It changes process-wide state, so a
// program calls it (fsbuild's main does), never this package on its own.
func QuietLibraries() { logrus.SetLevel(logrus.ErrorLevel) }
