//go:build !unix

package server

// fdLimit reports that the descriptor limit is unknown on this system.
func fdLimit() (uint64, bool) { return 0, false }
