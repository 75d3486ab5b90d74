import sys

from vaestudy.cli import main

sys.exit(main())
