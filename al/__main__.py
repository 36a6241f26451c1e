import sys

from al.cli import main

sys.exit(main())
