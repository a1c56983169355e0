"""server

Polars allocates through its own jemalloc, which by default keeps a cache of
freed memory for each of 8 arenas (four per core) that the threads of an
export (the event loop, SQLite's, the sheet writers, Polars' pool) spread
over. One arena shares that cache: a million-row export peaked 45-80 MB lower
and ran no slower (docs/benchmarks.md, twelfth session). jemalloc reads the
setting once, when Polars is first imported, which no module does before this
package; a value set in the environment wins.
"""

import os

os.environ.setdefault("_RJEM_MALLOC_CONF", "narenas:1")
