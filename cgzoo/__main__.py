"""``python -m cgzoo``: the ``cgzoo`` command run by a given interpreter, for scripts that must not rely on PATH."""

import sys

from cgzoo.cli import main

# the same command as the console script, so datasets and studies record it as `cgzoo …`, not as this file's path
sys.argv[0] = "cgzoo"
sys.exit(main())
