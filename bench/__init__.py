"""moisson's benchmarks (bench/README.md): a package so its parts can share code."""
