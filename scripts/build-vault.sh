#!/usr/bin/env bash
# Builds the Vault server binary from its published Go module.
# Vault's go.mod replaces its own sub-modules (api, sdk, api/auth/*) by *path*, and the module zip
# does not carry those folders, so `go install` and building inside the module both fail. A small
# wrapper module requires Vault plus the published versions of those sub-modules that Vault's own
# go.mod names, and repeats Vault's module-to-module replaces.
# Usage: scripts/build-vault.sh <version> <out-dir>
set -euo pipefail
version=$1 out=$2
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/versions.env"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
modfile=$(go mod download -json "github.com/hashicorp/vault@$version" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
[ -f "$modfile" ] || { echo "cannot download github.com/hashicorp/vault@$version" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
  echo "module rigbox.local/vault-build"
  echo
  echo "go $(go env GOVERSION | sed 's/^go//')"
  echo
  echo "require github.com/hashicorp/vault $version"
  # The sub-module versions Vault itself requires (lines like "github.com/hashicorp/vault/sdk v0.21.0").
  grep -E '^\s+github.com/hashicorp/vault/(api|sdk)[^ ]* v' "$modfile" | sed 's#//.*##' | awk '{print "require " $1 " " $2}'
  # Vault's replaces that point at other modules (not at local paths) still apply to the build.
  grep -E '^replace ' "$modfile" | grep -v '=> \./' || true
  # Sub-modules whose published version at the go.mod's number differs from Vault's own tree.
  for pin in ${VAULT_SUBMODULE_PINS:-}; do echo "replace ${pin%%=*} => ${pin%%=*} ${pin#*=}"; done
} > "$work/go.mod"
cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

// Keeps Vault's packages in the wrapper's build list.
import _ "github.com/hashicorp/vault/command"
GO
cd "$work"
go mod tidy -e >/dev/null 2>&1 || true
mkdir -p "$out"
go build -trimpath -ldflags "-s -w" -o "$out/vault" github.com/hashicorp/vault
