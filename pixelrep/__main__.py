import sys

from pixelrep.cli import main

sys.exit(main())
