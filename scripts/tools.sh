#!/usr/bin/env bash
# Installs the real engines the end-to-end tests drive, pinned (scripts/versions.env) and cached
# outside the checkout (~/.cache/rigbox-tools) so a fresh clone links them in seconds.
# Idempotent. Usage: scripts/tools.sh [tofu|terraform|null|tfplugindocs|vault|moto|schemathesis|postgres|tofurc]...
# (default: all)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
. "$root/scripts/versions.env"
cache=${RIGBOX_TOOLS_CACHE:-$HOME/.cache/rigbox-tools}
tools="$root/.tools"
mkdir -p "$cache" "$tools/bin"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

log() { printf 'tools: %s\n' "$*" >&2; }
die() { printf 'tools: error: %s\n' "$*" >&2; exit 1; }

# Copies a downloaded Go module into a writable build folder (the module cache is read-only).
module_dir() {
  local mod=$1 version=$2 dir
  dir=$(go mod download -json "$mod@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -d "$dir" ] || die "could not download Go module $mod@$version"
  printf '%s' "$dir"
}

install_tofu() {
  local out="$cache/tofu-$OPENTOFU_VERSION"
  if [ ! -x "$out/tofu" ]; then
    log "building OpenTofu $OPENTOFU_VERSION from its Go module (first run only; several minutes)"
    local src work
    src=$(module_dir github.com/opentofu/opentofu "$OPENTOFU_VERSION")
    work=$(mktemp -d "$cache/tofu-src.XXXXXX")
    cp -r "$src/." "$work/" && chmod -R u+w "$work"
    # OpenTofu's go.mod replaces hcl by its fork (a module, not a path), so building inside the
    # module works where `go install pkg@version` refuses.
    (cd "$work" && go build -trimpath -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" -o "$out.tmp/tofu" ./cmd/tofu) \
      || die "OpenTofu build failed (see above)"
    mv "$out.tmp" "$out"; rm -rf "$work"
  fi
  ln -sfn "$out/tofu" "$tools/bin/tofu"
  log "tofu: $(TF_CLI_CONFIG_FILE=/dev/null "$tools/bin/tofu" version | head -1)"
}

# HashiCorp Terraform: the machine image's (on the PATH), linked into .tools/bin so the tests never
# depend on PATH. Write-only attributes, which the suites test on both engines, need 1.11+.
install_terraform() {
  local tf v
  tf=$(PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$tools/bin" | paste -sd: -) command -v terraform || true)
  [ -n "$tf" ] || die "HashiCorp Terraform $TERRAFORM_VERSION is needed on the PATH (this machine image ships it)"
  # An empty CLI config: TF_CLI_CONFIG_FILE may name a file that does not exist (a warning on stderr).
  v=$(TF_CLI_CONFIG_FILE=/dev/null "$tf" version -json | sed -n 's/.*"terraform_version": *"\([^"]*\)".*/\1/p')
  [ "$v" = "$TERRAFORM_VERSION" ] || log "warning: terraform on the PATH is $v, the pinned version is $TERRAFORM_VERSION"
  case "$v" in 1.1[1-9].* | 1.[2-9][0-9].* | [2-9].*) ;; *) die "terraform $v at $tf is older than 1.11" ;; esac
  ln -sfn "$tf" "$tools/bin/terraform"
  log "terraform: $v ($tf)"
}

# HashiCorp's registry docs generator (provider/scripts/docs.mjs), built from its Go module.
install_tfplugindocs() {
  local out="$cache/tfplugindocs-$TFPLUGINDOCS_VERSION"
  if [ ! -x "$out/tfplugindocs" ]; then
    log "building tfplugindocs $TFPLUGINDOCS_VERSION from its Go module"
    rm -rf "$out.tmp"
    GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w" \
      "github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs@$TFPLUGINDOCS_VERSION" \
      || die "tfplugindocs build failed (see above)"
    rm -rf "$out"; mv "$out.tmp" "$out"
  fi
  ln -sfn "$out/tfplugindocs" "$tools/bin/tfplugindocs"
  log "tfplugindocs: $TFPLUGINDOCS_VERSION"
}

install_vault() {
  local out="$cache/vault-$VAULT_VERSION"
  if [ ! -x "$out/vault" ]; then
    log "building Vault $VAULT_VERSION from its Go module (first run only; long)"
    "$root/scripts/build-vault.sh" "$VAULT_VERSION" "$out.tmp" || die "Vault build failed (see above)"
    mv "$out.tmp" "$out"
  fi
  ln -sfn "$out/vault" "$tools/bin/vault"
  log "vault: $("$tools/bin/vault" version | head -1)"
}

install_moto() {
  local venv="$cache/moto-$MOTO_VERSION"
  if [ ! -x "$venv/bin/moto_server" ]; then
    log "installing moto $MOTO_VERSION (server mode) into a venv"
    rm -rf "$venv.tmp"
    python3 -m venv "$venv.tmp"
    "$venv.tmp/bin/pip" install -q "moto[server,ssm]==$MOTO_VERSION" || die "pip install moto failed"
    # venvs record their own path; rebuild in place rather than moving.
    rm -rf "$venv.tmp"; python3 -m venv "$venv"
    "$venv/bin/pip" install -q "moto[server,ssm]==$MOTO_VERSION" || die "pip install moto failed"
  fi
  ln -sfn "$venv/bin/moto_server" "$tools/bin/moto_server"
  log "moto_server: $MOTO_VERSION"
}

# The API fuzzer (test/api-fuzz.test.ts): schemathesis from PyPI, in its own venv.
install_schemathesis() {
  local venv="$cache/schemathesis-$SCHEMATHESIS_VERSION"
  # The marker is written last: a venv without it is a half-done install, redone from scratch.
  if [ ! -f "$venv/.installed" ] || [ ! -x "$venv/bin/st" ]; then
    log "installing schemathesis $SCHEMATHESIS_VERSION into a venv"
    command -v python3 >/dev/null || die "python3 is needed to install schemathesis"
    # Built in place (venvs record their own path); a half-built one is removed, never linked.
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (is the venv module installed?)"
    if ! "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"; then
      rm -rf "$venv"
      die "pip install schemathesis==$SCHEMATHESIS_VERSION failed (see above)"
    fi
    touch "$venv/.installed"
  fi
  ln -sfn "$venv/bin/st" "$tools/bin/st"
  ln -sfn "$venv/bin/schemathesis" "$tools/bin/schemathesis"
  log "schemathesis: $("$tools/bin/schemathesis" --version 2>&1 | head -1)"
}

# The gateway benchmark's peer (bench/gateway): LiteLLM's proxy from PyPI, in its own venv. Not in
# the default set: no test needs it. Install with: bash scripts/tools.sh litellm
install_litellm() {
  local venv="$cache/litellm-$LITELLM_VERSION"
  if [ ! -f "$venv/.installed" ] || [ ! -x "$venv/bin/litellm" ]; then
    log "installing litellm[proxy] $LITELLM_VERSION into a venv (a few minutes)"
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (is the venv module installed?)"
    if ! "$venv/bin/pip" install -q --disable-pip-version-check "litellm[proxy]==$LITELLM_VERSION"; then
      rm -rf "$venv"
      die "pip install litellm[proxy]==$LITELLM_VERSION failed (see above)"
    fi
    touch "$venv/.installed"
  fi
  ln -sfn "$venv/bin/litellm" "$tools/bin/litellm"
  log "litellm: $LITELLM_VERSION"
}

install_postgres() {
  local bindir
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    log "installing PostgreSQL from Debian's packages"
    command -v apt-get >/dev/null || die "PostgreSQL is missing and apt-get is not available"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
      || die "apt-get install postgresql failed"
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  fi
  for b in initdb pg_ctl postgres psql; do ln -sfn "$bindir/$b" "$tools/bin/$b"; done
  log "postgres: $("$tools/bin/postgres" --version)"
}

# The CLI config that installs providers from the local mirror with no network, for tofu and
# terraform alike: hashicorp/null (built above) and rigbox/rigbox (laid in by `npm run build`). No plugin cache: the provider is
# rebuilt under the same version during development, and a cache would serve a stale copy.
write_tofurc() {
  mkdir -p "$tools/mirror"
  cat > "$tools/tofurc" <<RC
provider_installation {
  filesystem_mirror {
    path    = "$tools/mirror"
    include = ["registry.opentofu.org/*/*", "registry.terraform.io/*/*"]
  }
}
RC
}

want=("$@"); [ ${#want[@]} -gt 0 ] || want=(tofu terraform null tfplugindocs vault moto schemathesis postgres tofurc)
for t in "${want[@]}"; do
  case "$t" in
    tofu) install_tofu ;;
    terraform) install_terraform ;;
    tfplugindocs) install_tfplugindocs ;;
    null) "$root/scripts/build-null-provider.sh" "$cache" "$tools/mirror" ;;
    vault) install_vault ;;
    moto) install_moto ;;
    schemathesis) install_schemathesis ;;
    litellm) install_litellm ;;
    postgres) install_postgres ;;
    tofurc) write_tofurc ;;
    *) die "unknown tool '$t' (tofu, terraform, null, tfplugindocs, vault, moto, schemathesis, postgres, tofurc, litellm)" ;;
  esac
done
