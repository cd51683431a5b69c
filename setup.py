"""Build hook: generate the Python gRPC code from protos/ on every install.

The generated packages (huiyuan/<service>/v1/) are never committed. Each build
deletes them first, so a file whose .proto was removed or renamed cannot survive
a reinstall.

They are generated as this file loads, before setuptools lists the packages
(pyproject.toml, [tool.setuptools.packages.find]): generated later, in build_py, they
were missing from that list in a clean clone, and the wheel lacked them
(`huiyuan migrate` then failed with `ModuleNotFoundError: huiyuan.member`). Every
setuptools command of a build (metadata, wheel, editable install) runs in a process of
its own, so each regenerates: protoc takes a fifth of a second.
"""

import sys
from pathlib import Path

from setuptools import setup

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
from gen_protos import generate

generate()
setup()
