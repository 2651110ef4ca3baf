"""`python -m reverseprobe.cli` (as when cli was one module)."""

from reverseprobe.cli import main

raise SystemExit(main())
