#!/usr/bin/env bash
# Copy the google/api, google/rpc and google/type .proto files that the installed
# googleapis-common-protos ships into build/proto-deps, so `buf lint` resolves our
# imports without the network. Usage: scripts/proto_deps.sh [python]
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-.venv/bin/python}
src=$("$py" -c 'import google.api, pathlib; print(pathlib.Path(google.api.__path__[0]).parent)')
rm -rf build/proto-deps && mkdir -p build/proto-deps/google
for d in api rpc type; do
  mkdir -p "build/proto-deps/google/$d"
  cp "$src/$d"/*.proto "build/proto-deps/google/$d/"
done
