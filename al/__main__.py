import sys

from al.parent_watch import from_environment

from_environment()  # a `--jobs` worker: armed before anything else is imported

from al.cli import main  # noqa: E402

sys.exit(main())
