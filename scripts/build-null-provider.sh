#!/usr/bin/env bash
# Builds the null_resource baseline provider (tools/null-provider) and lays it into the local
# provider mirror as hashicorp/null, for both OpenTofu's and Terraform's default registry hosts.
# Usage: scripts/build-null-provider.sh <cache-dir> <mirror-dir>
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/versions.env"
cache=$1 mirror=$2
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
src="$root/tools/null-provider"
# The cache key includes the source hash so an edit rebuilds.
key=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-12)
out="$cache/null-provider-$NULL_PROVIDER_VERSION-$key"
if [ ! -x "$out/terraform-provider-null" ]; then
  echo "tools: building the null provider baseline" >&2
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/terraform-provider-null" .)
  rm -rf "$out"; mv "$out.tmp" "$out"
fi
platform="$(go env GOOS)_$(go env GOARCH)"
for host in registry.opentofu.org registry.terraform.io; do
  dir="$mirror/$host/hashicorp/null/$NULL_PROVIDER_VERSION/$platform"
  mkdir -p "$dir"
  cp "$out/terraform-provider-null" "$dir/terraform-provider-null_v$NULL_PROVIDER_VERSION"
done
echo "tools: null provider: hashicorp/null $NULL_PROVIDER_VERSION (baseline build) in the mirror" >&2
