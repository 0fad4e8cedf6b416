import sys

from lumbarlab.cli import main

sys.exit(main())
