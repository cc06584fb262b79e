// Package ui is the registry browser serve answers at /ui/: read-only
// HTML pages (templates/ui) of the images, tags, platforms, labels and pull
// commands of the embedded registry, and of the registry itself.
//
// It reads the registry's own storage in the serve process: Attach,
// through regstore.Capture, hands it distribution's namespace and storage
// driver while the application is built, and wraps every repository with
// distribution's listener hooks, so that each push and delete invalidates
// what the pages cached. It never writes to the registry, never reaches it
// over HTTP, and answers only below /ui/ (and the redirect of /); the
// /v2/ API is passed through untouched. Attached artifacts come from an
// Artifacts source (the referrers support), when one is set.
package ui
