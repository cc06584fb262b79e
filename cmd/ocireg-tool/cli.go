package main

// CLI is the command line of ocireg-tool. Each command lives in its own
// file as a struct with a Run method that calls one function below cmd/.
type CLI struct {
	Generate GenerateCmd `cmd:"" help:"Generate the helper script, registry config and (secure mode) PKI into the storage directory."`
	Target   TargetCmd   `cmd:"" help:"Install a target payload (docker, oci or ca) under --dest."`
	Labels   LabelsCmd   `cmd:"" help:"Compute the build-time OCI labels; --apply writes them into OCI layouts."`
	Help     HelpCmd     `cmd:"" help:"Show the helper script's commands and configuration."`
	Version  VersionCmd  `cmd:"" help:"Print the version."`
}
