#!/usr/bin/env bash
# `make dist`: everything a user installs, built from this checkout into dist/:
#   backgroundjobs-<version>-py3-none-any.whl, backgroundjobs-<version>.tar.gz  (wheel, sdist)
#   backgroundjobs-operator-<chart version>.tgz                                 (helm package)
#   backgroundjobs-image-{base,examples,operator}-<version>.tar.gz              (docker save | gzip)
#   SHA256SUMS
# The images are built by hack/build-images.sh (Docker; installed and started when missing).
#
#   bash hack/dist.sh                # all of it
#   DIST_IMAGES=0 bash hack/dist.sh  # without the images (no Docker needed)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${BACKGROUNDJOBS_CACHE:-$HOME/.cache/backgroundjobs}
VENV=${VENV:-$CACHE/venv}
DIST=${DIST:-$root/dist}
export PATH=$VENV/bin:$CACHE/bin:$PATH
cd "$root"

version=$(python3 -c 'import tomllib,sys; print(tomllib.load(open(sys.argv[1],"rb"))["project"]["version"])' pyproject.toml)
chart=charts/backgroundjobs-operator
t0=$SECONDS
rm -rf "$DIST"
mkdir -p "$DIST"

echo "[dist] wheel and sdist (python -m build)"
"$VENV/bin/python" -m build --outdir "$DIST" . >"$DIST/.build.log" 2>&1 || {
  tail -30 "$DIST/.build.log" >&2
  exit 1
}
rm -f "$DIST/.build.log"

echo "[dist] chart package (helm package)"
command -v helm >/dev/null || { echo "[dist] helm is missing: run make cluster-tools" >&2; exit 1; }
helm package "$chart" -d "$DIST" >/dev/null

if [[ ${DIST_IMAGES:-1} != 0 ]]; then
  echo "[dist] images (hack/build-images.sh)"
  bash hack/build-images.sh
  for image in base examples operator; do
    echo "[dist]   docker save backgroundjobs/$image:$version"
    docker save "backgroundjobs/$image:$version" | gzip -1 >"$DIST/backgroundjobs-image-$image-$version.tar.gz"
  done
fi

(cd "$DIST" && sha256sum -- * >SHA256SUMS)
echo "[dist] done in $((SECONDS - t0))s:"
ls -l "$DIST" | tail -n +2 | awk '{printf "  %8.1f MB  %s\n", $5/1e6, $9}'
