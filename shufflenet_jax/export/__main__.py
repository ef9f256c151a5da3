import sys

from shufflenet_jax.export.cli import main

sys.exit(main())
