import sys

from marketlib.cli import main

sys.exit(main())
