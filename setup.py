"""Build hook: generate the Python gRPC code from protos/ on every install.

The generated packages (huiyuan/<service>/v1/) are never committed. Each build
deletes them first, so a file whose .proto was removed or renamed cannot survive
a reinstall. Editable installs run build_py too, so `pip install -e .` regenerates.
"""

from setuptools import setup
from setuptools.command.build_py import build_py

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
from gen_protos import generate  # noqa: E402


class GenerateThenBuild(build_py):
    def run(self):
        generate()
        super().run()


setup(cmdclass={"build_py": GenerateThenBuild})
