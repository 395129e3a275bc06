//go:build !unix

package bench

func raiseNofile() {}
