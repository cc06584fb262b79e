package main

// CLI is the command line of ocireg-tool. Each command lives in its own
// file as a struct with a Run method that calls one function below cmd/.
type CLI struct {
	Generate     GenerateCmd     `cmd:"" help:"Generate the helper script, registry config and (secure mode) PKI into the storage directory."`
	Target       TargetCmd       `cmd:"" help:"Install a target payload (docker, oci, ca or policy) under --dest."`
	Start        StartCmd        `cmd:"" help:"Start the container registry server (detached; returns when it answers)."`
	Restart      RestartCmd      `cmd:"" help:"Stop the registry if it runs (on any port of this storage), then start it as configured now."`
	Stop         StopCmd         `cmd:"" help:"Stop the container registry server."`
	Status       StatusCmd       `cmd:"" help:"Check that the registry runs and answers."`
	Push         PushCmd         `cmd:"" help:"Push OCI images from the deploy directories."`
	Populate     PopulateCmd     `cmd:"" help:"Push from a bitbake env dump (container-registry-populate)."`
	Import       ImportCmd       `cmd:"" help:"Import a third-party image (registry, OCI layout or archive) into the registry."`
	Promote      PromoteCmd      `cmd:"" help:"Copy images, every platform and referrer (SBOMs, signatures), to another registry."`
	Export       ExportCmd       `cmd:"" help:"Write images, every platform and referrer, to one OCI layout archive (an offline bundle)."`
	Delete       DeleteCmd       `cmd:"" help:"Delete one tag (other tags of the same image stay)."`
	GC           GCCmd           `cmd:"" name:"gc" help:"Garbage collect unreferenced blobs (dry run first; --yes to skip the question)."`
	Prune        PruneCmd        `cmd:"" help:"Remove old builds by the retention policy, then collect (dry run first; --yes to skip the question)."`
	List         ListCmd         `cmd:"" help:"List all images with their tags."`
	Tags         TagsCmd         `cmd:"" help:"List the tags of one image."`
	SBOM         SBOMCmd         `cmd:"" name:"sbom" help:"Fetch the SPDX SBOM (or CVE-check SPDX, package list) attached to an image."`
	Catalog      CatalogCmd      `cmd:"" help:"Raw API catalog output (JSON)."`
	Info         InfoCmd         `cmd:"" help:"Show the configuration baked into the helper script."`
	Verify       VerifyCmd       `cmd:"" help:"Check every tag, manifest and blob of the storage (like git fsck)."`
	Serve        ServeCmd        `cmd:"" help:"Run the registry in the foreground (what start runs detached)."`
	SampleDeploy SampleDeployCmd `cmd:"" name:"sample-deploy" hidden:"" help:"Write a sample deploy tree."`
	Labels       LabelsCmd       `cmd:"" help:"Compute the build-time OCI labels; --apply writes them into OCI layouts."`
	Help         HelpCmd         `cmd:"" help:"Show the helper script's commands and configuration."`
	Version      VersionCmd      `cmd:"" help:"Print the version."`
}
