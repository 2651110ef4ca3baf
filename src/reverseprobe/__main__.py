"""`python -m reverseprobe`."""

from reverseprobe.cli import main

raise SystemExit(main())
