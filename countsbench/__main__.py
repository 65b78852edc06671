import sys

from countsbench.cli import main

sys.exit(main())
