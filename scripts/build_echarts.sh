#!/usr/bin/env bash
# Builds console/static/vendor/echarts/echarts.console.min.js: Apache ECharts with only
# the charts and components the console draws (scripts/echarts_console.js says which),
# about half the full build's size, so each page with charts parses half as much script.
# The output is committed (docs/decisions/0006-console-stack.md): installs and CI need no
# npm. Run it again after changing scripts/echarts_console.js or the versions below.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/scripts/echarts_console.js" "$work/entry.js"
cd "$work"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund echarts@6.1.0 esbuild@0.28.2
npx esbuild entry.js --bundle --minify --format=iife --target=es2019 --legal-comments=eof \
  --outfile="$here/console/static/vendor/echarts/echarts.console.min.js"
