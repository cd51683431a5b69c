"""Generate huiyuan/<service>/v1/*_pb2*.py from protos/ with grpcio-tools.

Run by setup.py on every install, and by hand with `python scripts/gen_protos.py`.
google/api, google/rpc and google/type imports resolve from the .proto files that
googleapis-common-protos ships, so no network is needed.
"""

import shutil
import sys
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT  # protos/huiyuan/x/v1/y.proto -> huiyuan/x/v1/y_pb2.py


def googleapis_root() -> Path:
    """The site-packages folder that holds googleapis-common-protos' google/api/*.proto."""
    import google.api

    return Path(google.api.__path__[0]).parent.parent


def generate() -> list[Path]:
    from grpc_tools import protoc

    sources = sorted(PROTOS.rglob("*.proto"))
    for package_dir in {OUT / p.relative_to(PROTOS).parent.parent for p in sources}:
        shutil.rmtree(package_dir, ignore_errors=True)  # nothing stale survives
    wkt = resources.files("grpc_tools") / "_proto"
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{googleapis_root()}",
        f"-I{wkt}",
        f"--python_out={OUT}",
        f"--pyi_out={OUT}",
        f"--grpc_python_out={OUT}",
        *map(str, sources),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed on protos/")
    generated = sorted({(OUT / p.relative_to(PROTOS)).parent for p in sources})
    for folder in generated:  # make each generated folder an importable package
        while folder != OUT:
            (folder / "__init__.py").touch()
            folder = folder.parent
    return generated


if __name__ == "__main__":
    for folder in generate():
        print(folder.relative_to(ROOT))
    sys.exit(0)
