"""The last module a deck's fork server imports (``models.worker_context``): it settles before any fork.

Importing this module is the action: the fork server runs no code of ours besides its imports.
It freezes the collector, so a collection in the fork server never writes to the preloaded
objects (a write there would copy each touched page in the fork server, while the workers keep
the old one), and unmaps the pages the imports touched once in read-only libraries (``_memory``):
the workers fork without them and map only what they use.
"""

import gc

from ._memory import drop_library_pages

gc.freeze()
drop_library_pages()
