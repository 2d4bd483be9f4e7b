package build

import "github.com/sirupsen/logrus"

// silenceLogrus hides warnings that BuildKit's and containerd's libraries log
// through logrus (e.g. "failed check for fsverity support" on every OCI
// export on filesystems without it); fsbuild reports errors itself.
func init() { logrus.SetLevel(logrus.ErrorLevel) }
