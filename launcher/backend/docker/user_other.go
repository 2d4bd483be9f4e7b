//go:build !unix

package docker

// runAs is the image's user: file ownership is not a uid here.
func runAs(string) (string, error) { return "", nil }
