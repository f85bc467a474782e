"""Performance benchmarks: each prints its figures and the ratio to a reference measured in
the same run. They never assert a time; run them with `make bench`."""
