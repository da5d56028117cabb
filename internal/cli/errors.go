package cli

import (
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// usageError is a mistake in the command line; its message ends with an
// example of correct use.
type usageError struct {
	msg     string
	example string
}

func (e *usageError) Error() string {
	if e.example == "" {
		return e.msg
	}
	return e.msg + "\nexample:\n  " + e.example
}

// newUsageError returns a usageError for cmd, whose first example line is
// shown after the message.
func newUsageError(example, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), example: example}
}

// FormatError renders err the way kubectl does: errors answered by the
// server as "Error from server (Reason): message", everything else as
// "error: message".
// An error joined from several (errors.Join) gives one line per error.
func FormatError(err error) string {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		lines := make([]string, 0, len(joined.Unwrap()))
		for _, e := range joined.Unwrap() {
			lines = append(lines, FormatError(e))
		}
		return strings.Join(lines, "\n")
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		switch {
		case s.Reason == metav1.StatusReasonUnauthorized:
			return fmt.Sprintf("error: You must be logged in to the server (%s)", s.Message)
		case s.Reason != "":
			return fmt.Sprintf("Error from server (%s): %s", s.Reason, s.Message)
		default:
			return fmt.Sprintf("Error from server: %s", s.Message)
		}
	}
	return "error: " + err.Error()
}
