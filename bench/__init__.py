"""Benchmarks (`make bench`).

The server package sets Polars' allocator up before Polars is first imported
(server/__init__.py); imported here first, a benchmark that measures in its own
process (bench.checks) runs with the allocator a server process has.
"""

import server  # noqa: F401
