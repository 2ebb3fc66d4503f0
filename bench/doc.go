// Package bench measures govbmc against its targets and peers. Its test
// runs a few-second smoke version with `make test`; `make bench` runs the
// full version and writes docs/BENCHMARKS.md.
package bench
