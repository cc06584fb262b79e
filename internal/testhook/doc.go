// Package testhook lets the end-to-end fault tests freeze the tool at a
// named point of its work, so that a crash (SIGKILL of the server or of the
// tool itself) lands exactly there instead of wherever a timer happens to
// fall. It is compiled in only with the build tag ocireg_testhooks (the
// end-to-end tests build the tool with it; release builds do not), and even
// then inert unless the environment variable named by EnvVar is set.
//
// The value is "POINT[#N]:MARKER": the N-th time (default 1) the tool
// reaches POINT, it writes its pid to the file MARKER and waits until that
// file is removed (the test's signal to continue), at most MaxPause.
//
// Points:
//
//	push-before-index  push put every manifest of an image by digest and is
//	                   about to write the first tag's index
//	gc-delete          gc removed one more path of a real (not dry) sweep
//	referrer-recorded  serve recorded the referrer of a manifest PUT with a
//	                   subject and is about to let distribution store it
//	referrer-stored    distribution stored and tagged that manifest; the
//	                   201 (with OCI-Subject) is not sent yet
package testhook

// EnvVar names the variable that arms a pause point.
const EnvVar = "OCIREG_TOOL_TEST_PAUSE_AT"
