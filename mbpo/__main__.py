import sys

from mbpo.cli import main

sys.exit(main())
