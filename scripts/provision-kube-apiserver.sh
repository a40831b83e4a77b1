#!/usr/bin/env bash
# Provision the real kube-apiserver integration tier (test/integration/).
#
# Installs etcd and the build tools from Debian, builds kube-apiserver 1.20.2 from
# Debian's source package and caches the binary outside the repository:
#
#   ${TABBY_CACHE_DIR:-$HOME/.cache/tabby}/kube-apiserver-1.20.2/kube-apiserver
#
# Idempotent: with the binary cached and etcd installed it exits at once. Run as root
# (it uses apt-get). See docs/INTEGRATION.md.
set -euo pipefail

readonly KUBE_VERSION="1.20.2"
readonly DEB_SOURCE_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
readonly GO_BIN_DIR="/usr/lib/go-1.19/bin"
readonly PACKAGES=(etcd-server etcd-client golang-1.19-go rsync jq openssl dpkg-dev)
readonly REFLECT2_PACKAGE="golang-github-modern-go-reflect2-dev"
readonly DEB_SRC_FILE="/etc/apt/sources.list.d/tabby-deb-src.sources"

readonly CACHE_DIR="${TABBY_CACHE_DIR:-$HOME/.cache/tabby}"
readonly BIN_DIR="${CACHE_DIR}/kube-apiserver-${KUBE_VERSION}"
readonly BIN_PATH="${BIN_DIR}/kube-apiserver"

log() { printf '[provision-kube-apiserver] %s\n' "$*"; }
die() {
  printf '[provision-kube-apiserver] error: %s\n' "$*" >&2
  exit 1
}

has_runtime_deps() {
  command -v etcd >/dev/null && command -v etcdctl >/dev/null && command -v openssl >/dev/null
}

binary_is_cached() {
  [[ -x "$BIN_PATH" ]] || return 1
  local version
  version="$("$BIN_PATH" --version 2>/dev/null)" || return 1
  [[ "$version" == "Kubernetes v${KUBE_VERSION}" ]]
}

if binary_is_cached && has_runtime_deps; then
  log "cached: $BIN_PATH ($("$BIN_PATH" --version)); $(etcd --version | awk 'NR == 1 { print $1, $3 }'); nothing to do"
  exit 0
fi

[[ "$(id -u)" -eq 0 ]] || die "must run as root (apt-get install); the binary is not cached at $BIN_PATH"
export DEBIAN_FRONTEND=noninteractive

# Print the URI of an existing "deb" source for bookworm main (deb822 or one-line format).
find_bookworm_mirror() {
  local file uri
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$file" && "$file" != "$DEB_SRC_FILE" ]] || continue
    uri="$(awk '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && suites ~ /(^| )bookworm( |$)/ && comps ~ /(^| )main( |$)/ && uris != "") {
          split(uris, u, " "); print u[1]; found = 1; exit
        }
        types = ""; suites = ""; comps = ""; uris = ""
      }
      /^[[:space:]]*$/ { flush(); next }
      /^[[:space:]]*#/ { next }
      tolower($1) == "types:" { $1 = ""; types = $0 }
      tolower($1) == "uris:" { $1 = ""; sub(/^ +/, ""); uris = $0 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      tolower($1) == "components:" { $1 = ""; comps = $0 }
      END { if (!found) flush() }
    ' "$file")"
    if [[ -n "$uri" ]]; then
      echo "$uri"
      return
    fi
  done
}

find_bookworm_mirror_oneline() {
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    sed -e 's/\[[^]]*\]//' |
    awk '$1 == "deb" && $3 == "bookworm" { for (i = 4; i <= NF; i++) if ($i == "main") { print $2; exit } }'
}

find_signed_by() {
  local mirror="$1"
  cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk -v mirror="$mirror" '
      /^[[:space:]]*$/ { if (hit && key != "") { print key; done = 1; exit } hit = 0; key = ""; next }
      tolower($1) == "uris:" && index($0, mirror) { hit = 1 }
      tolower($1) == "signed-by:" { key = $2 }
      END { if (!done && hit && key != "") print key }
    '
}

ensure_deb_src() {
  if [[ -f "$DEB_SRC_FILE" ]]; then
    log "deb-src entry present: $DEB_SRC_FILE"
    return
  fi
  local mirror signed_by
  mirror="$(find_bookworm_mirror)"
  [[ -n "$mirror" ]] || mirror="$(find_bookworm_mirror_oneline)"
  [[ -n "$mirror" ]] || die "no 'deb' entry for bookworm main in /etc/apt/sources.list*; cannot mirror it as deb-src"
  signed_by="$(find_signed_by "$mirror")"
  log "adding deb-src for bookworm main from $mirror -> $DEB_SRC_FILE"
  {
    echo "Types: deb-src"
    echo "URIs: $mirror"
    echo "Suites: bookworm"
    echo "Components: main"
    if [[ -n "$signed_by" ]]; then echo "Signed-By: $signed_by"; fi
  } >"$DEB_SRC_FILE"
}

ensure_deb_src
log "apt-get update"
apt-get update -q
log "apt-get install -y ${PACKAGES[*]}"
apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"

if binary_is_cached; then
  log "cached: $BIN_PATH ($("$BIN_PATH" --version)); skipping the build"
  exit 0
fi

WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tabby-kube-build.XXXXXX")"
readonly WORK_DIR
cleanup() { rm -rf "$WORK_DIR"; }
trap cleanup EXIT
# apt downloads as the unprivileged _apt user when it can write the directory.
chmod 0755 "$WORK_DIR"
mkdir -p "$WORK_DIR/src" "$WORK_DIR/reflect2"
chown _apt "$WORK_DIR/src" "$WORK_DIR/reflect2" 2>/dev/null || true

log "downloading source package kubernetes=$DEB_SOURCE_VERSION into $WORK_DIR/src"
(cd "$WORK_DIR/src" && apt-get source -q --download-only "kubernetes=$DEB_SOURCE_VERSION")
orig_tarball="$(find "$WORK_DIR/src" -maxdepth 1 -name 'kubernetes_*.orig.tar.*' -print -quit)"
[[ -n "$orig_tarball" ]] || die "no orig tarball in $WORK_DIR/src: $(ls "$WORK_DIR/src")"

log "unpacking $(basename "$orig_tarball")"
mkdir -p "$WORK_DIR/tree"
tar -xf "$orig_tarball" -C "$WORK_DIR/tree"
tree_dir="$(find "$WORK_DIR/tree" -mindepth 1 -maxdepth 1 -type d -print -quit)"
[[ -f "$tree_dir/cmd/kube-apiserver/apiserver.go" ]] || die "unexpected tarball layout in $tree_dir"

log "replacing vendor/github.com/modern-go/reflect2 with Debian's $REFLECT2_PACKAGE (1.0.1 breaks on Go >= 1.18)"
(cd "$WORK_DIR/reflect2" && apt-get download -q "$REFLECT2_PACKAGE")
reflect2_deb="$(find "$WORK_DIR/reflect2" -maxdepth 1 -name '*.deb' -print -quit)"
dpkg-deb -x "$reflect2_deb" "$WORK_DIR/reflect2/root"
reflect2_src="$WORK_DIR/reflect2/root/usr/share/gocode/src/github.com/modern-go/reflect2"
[[ -f "$reflect2_src/reflect2.go" ]] || die "reflect2 sources not found in $reflect2_deb"
rm -rf "$tree_dir/vendor/github.com/modern-go/reflect2"
mkdir -p "$tree_dir/vendor/github.com/modern-go/reflect2"
# Only the package's Go files: the vendor tree carries no tests or module metadata.
find "$reflect2_src" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' -o -name 'LICENSE' \) ! -name '*_test.go' \
  -exec cp {} "$tree_dir/vendor/github.com/modern-go/reflect2/" \;

log "building kube-apiserver $KUBE_VERSION with $("$GO_BIN_DIR/go" version) (make WHAT=cmd/kube-apiserver; minutes)"
build_start=$(date +%s)
(
  cd "$tree_dir"
  unset GOFLAGS GOPATH
  export PATH="$GO_BIN_DIR:$PATH" CGO_ENABLED=0
  # The tarball has no .git: give the version stamping what it would read from git.
  export KUBE_GIT_VERSION="v$KUBE_VERSION" KUBE_GIT_TREE_STATE="clean" KUBE_GIT_MAJOR="1" KUBE_GIT_MINOR="20"
  make WHAT=cmd/kube-apiserver
)
build_seconds=$(($(date +%s) - build_start))

built="$(find "$tree_dir/_output" -type f -name kube-apiserver -perm -u+x -print -quit)"
[[ -n "$built" ]] || die "make finished but no kube-apiserver binary under $tree_dir/_output"
mkdir -p "$BIN_DIR"
cp "$built" "$BIN_PATH.tmp.$$"
mv -f "$BIN_PATH.tmp.$$" "$BIN_PATH"
binary_is_cached || die "built binary does not report Kubernetes v$KUBE_VERSION: $("$BIN_PATH" --version 2>&1 || true)"
log "built in ${build_seconds}s; cached $BIN_PATH ($("$BIN_PATH" --version))"
