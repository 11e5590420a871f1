import sys

from spokenlm.cli.main import main

sys.exit(main())
