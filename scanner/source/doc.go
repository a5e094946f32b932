// Package source checks one commit of a git repository out into a
// temporary workspace, so that the engines scan exactly that commit.
//
// It drives the git command line: git handles every transport (local
// paths, file://, https, ssh) and every credential helper the user already
// has configured, the same way their pipeline does.
package source
