// Package forge reports gate decisions back to the forge that hosts a
// project, as commit statuses: a GitHub-compatible
// POST {api}/repos/{owner}/{repo}/statuses/{sha}, which GitHub, GitHub
// Enterprise (api base https://HOST/api/v3) and Gitea (https://HOST/api/v1)
// all accept.
//
// StateFor maps a gate decision to a status state; PostStatus sends it.
// A decision of unknown becomes "error", not "failure": both block a merge
// that requires the status, but "error" says that the gate could not
// judge the commit rather than that the commit failed it.
package forge
