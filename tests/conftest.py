import os
import sys
from pathlib import Path

# Tests run on the CPU in float32 with exact matmuls, whatever machine they are on.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
