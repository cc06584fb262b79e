package tasks

// UsageError is a misuse of a command: it is reported with the command's
// usage and exit status 2.
type UsageError struct {
	Msg   string
	Usage string
}

func (e *UsageError) Error() string { return e.Msg }

// SilentError ends a command with Code after the command has already told
// the user what happened (e.g. `status` of a stopped registry).
type SilentError struct {
	Code int
}

func (e *SilentError) Error() string { return "exit status" }
