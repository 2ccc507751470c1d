"""``python -m serving``: the model server's entry point (the serving image's ENTRYPOINT); see serving.app."""

import sys

from serving.app import main

sys.exit(main())
