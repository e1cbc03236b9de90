#!/usr/bin/env bash
# Builds the real hashicorp/null provider from its Go module and lays it into the local provider
# mirror, for both OpenTofu's and Terraform's default registry hosts. The Go module proxy serves
# its v3 source only as a pseudo-version of the v1 module path (NULL_PROVIDER_MODULE_VERSION, the
# 3.3.1 release's tree): the module cache is read-only, so it is built in a writable copy.
# Usage: scripts/build-null-provider.sh <cache-dir> <mirror-dir>
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/versions.env"
cache=$1 mirror=$2
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
module=github.com/hashicorp/terraform-provider-null
out="$cache/hashicorp-null-$NULL_PROVIDER_VERSION-$NULL_PROVIDER_MODULE_VERSION"
exe="terraform-provider-null_v${NULL_PROVIDER_VERSION}_x5"
if [ ! -x "$out/$exe" ]; then
  echo "tools: building hashicorp/null $NULL_PROVIDER_VERSION from $module@$NULL_PROVIDER_MODULE_VERSION" >&2
  src=$(go mod download -json "$module@$NULL_PROVIDER_MODULE_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$src" ] && [ -d "$src" ] || { echo "tools: error: could not download $module@$NULL_PROVIDER_MODULE_VERSION" >&2; exit 1; }
  grep -q "^## $NULL_PROVIDER_VERSION " "$src/CHANGELOG.md" \
    || { echo "tools: error: $module@$NULL_PROVIDER_MODULE_VERSION is not the $NULL_PROVIDER_VERSION source" >&2; exit 1; }
  work=$(mktemp -d "$cache/hashicorp-null-src.XXXXXX")
  cp -r "$src/." "$work/" && chmod -R u+w "$work"
  rm -rf "$out.tmp"
  # As HashiCorp's release build: trimmed paths, no symbols, the version stamped in.
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$NULL_PROVIDER_VERSION" -o "$out.tmp/$exe" .) \
    || { rm -rf "$work" "$out.tmp"; echo "tools: error: hashicorp/null build failed (see above)" >&2; exit 1; }
  rm -rf "$work" "$out"; mv "$out.tmp" "$out"
fi
platform="$(go env GOOS)_$(go env GOARCH)"
for host in registry.opentofu.org registry.terraform.io; do
  # Only this version: the stand-in the mirror once held (3.2.4) is removed.
  rm -rf "$mirror/$host/hashicorp/null"
  dir="$mirror/$host/hashicorp/null/$NULL_PROVIDER_VERSION/$platform"
  mkdir -p "$dir"
  cp "$out/$exe" "$dir/$exe"
done
echo "tools: null provider: hashicorp/null $NULL_PROVIDER_VERSION (real, built from $module@$NULL_PROVIDER_MODULE_VERSION) in the mirror" >&2
