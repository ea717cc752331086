"""What the test packages share: ports, waiting, the CI switch, the production command.

Plain modules, no tests and no fixtures (those live in the conftest.py files), so a test
module never imports another test module.
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
