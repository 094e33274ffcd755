package appconf

import (
	"fmt"
	"strings"
)

// ReservedPrefix starts the names pyvhost gives its own processes: an app
// cannot set them (PYVHOST_WORKER carries a worker's wiring).
const ReservedPrefix = "PYVHOST_"

// ValidateKey checks an environment variable's name: a POSIX name
// (letters, digits, _; not starting with a digit), not pyvhost's own.
func ValidateKey(k string) error {
	if k == "" {
		return fmt.Errorf("an empty variable name: want KEY=VALUE")
	}
	for i, c := range k {
		ok := c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9'
		if !ok {
			return fmt.Errorf("variable name %q: want letters, digits and _ only, not starting with a digit (e.g. SECRET_KEY)", k)
		}
	}
	if strings.HasPrefix(strings.ToUpper(k), ReservedPrefix) {
		return fmt.Errorf("variable name %q: names starting %s are pyvhost's own", k, ReservedPrefix)
	}
	return nil
}

// ValidateValue checks a value: anything but NUL, which no environment can hold.
func ValidateValue(k, v string) error {
	if strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("the value of %s holds a NUL byte, which no environment variable can hold", k)
	}
	return nil
}

// ParseAssignment parses one KEY=VALUE as given on a command line (--env,
// config set): the value is taken as it is, quotes and all.
func ParseAssignment(s string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", fmt.Errorf("%q: want KEY=VALUE", s)
	}
	if err := ValidateKey(k); err != nil {
		return "", "", err
	}
	if err := ValidateValue(k, v); err != nil {
		return "", "", err
	}
	return k, v, nil
}
