package model

import "slices"

// CheckName returns an error listing the supported models when name is not
// one of them, so commands can reject a job before loading any data.
func CheckName(name string) error {
	if slices.Contains(supported, name) {
		return nil
	}
	return unknownModel(name)
}
