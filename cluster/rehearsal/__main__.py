import sys

from cluster.rehearsal.rehearse import main

sys.exit(main())
