import sys

from agents.runtime import main

sys.exit(main())
