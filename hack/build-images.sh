#!/usr/bin/env bash
# Build the project's images with a local Docker engine and no registry:
#   backgroundjobs/debian-python:bookworm   base OS image: debootstrap (Debian packages) + python3
#   backgroundjobs/base:<version>           the job runtime (job_images/base/Dockerfile)
#   backgroundjobs/examples:<version>       the example handlers (job_images/examples/Dockerfile)
#   backgroundjobs/operator:<version>       the operator (operator/Dockerfile)
#   backgroundjobs/pause:<k8s version>      a real node's pod sandbox (hack/node/Dockerfile)
#   backgroundjobs/coredns:<version>        a real node's cluster DNS (hack/node/Dockerfile)
#
# Installs docker.io from Debian and starts dockerd when there is no engine. The project and its
# dependencies are installed from wheels built on the host, so no build step uses the network
# (docker build --network=none). Caches in $BACKGROUNDJOBS_CACHE (~/.cache/backgroundjobs): the
# Debian root filesystem and the dependency wheels; a warm run takes seconds.
#
# Environment:
#   BASE_IMAGE=python:3.11-slim   use this (already present) image instead of the Debian one
#   DEBIAN_MIRROR=...             where debootstrap gets packages (default deb.debian.org)
#   IMAGES="base examples operator"   which images to build (also: pause coredns, whose
#                                     binaries come from hack/build-cluster-tools.sh node)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=SCRIPTDIR/versions.env
source "$root/hack/versions.env"
CACHE=${BACKGROUNDJOBS_CACHE:-$HOME/.cache/backgroundjobs}
WORK=$CACHE/images
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_PACKAGES=python3,ca-certificates,tzdata
DEBIAN_IMAGE=backgroundjobs/debian-python:$DEBIAN_SUITE
IMAGES=${IMAGES:-base examples operator}
export DOCKER_BUILDKIT=0 # the classic builder: Debian's docker.io ships no buildx
mkdir -p "$WORK"

total_start=$SECONDS
step_start=0
step() { step_start=$SECONDS; echo "[images] $*"; }
done_step() { echo "[images]   done in $((SECONDS - step_start))s${1:+ ($1)}"; }
die() { echo "[images] error: $*" >&2; exit 1; }
apt_install() {
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; } \
    >>"$WORK/apt.log" 2>&1 || die "apt-get install $* failed; see $WORK/apt.log"
}

version=$(python3 -c 'import tomllib,sys; print(tomllib.load(open(sys.argv[1],"rb"))["project"]["version"])' "$root/pyproject.toml")

# --- 1. a Docker engine --------------------------------------------------------------------
step "docker engine"
if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
  [[ $(id -u) == 0 ]] || die "Docker is not installed; run as root to install docker.io, or install it"
  echo "[images]   installing docker.io (apt-get; log: $WORK/apt.log)"
  apt_install docker.io
fi
if ! docker info >/dev/null 2>&1; then
  [[ $(id -u) == 0 ]] || die "no Docker engine answers, and starting dockerd needs root"
  echo "[images]   starting dockerd (log: $CACHE/dockerd.log)"
  # No default bridge: builds run with --network=none and the tests with --network=host, so
  # nothing needs a container network.
  nohup dockerd --bridge=none >>"$CACHE/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || die "dockerd did not come up; see $CACHE/dockerd.log"
fi
done_step "server $(docker version -f '{{.Server.Version}}')"

# --- 2. the base OS image ------------------------------------------------------------------
if [[ -n ${BASE_IMAGE:-} ]]; then
  step "base OS image: $BASE_IMAGE (given)"
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || die "BASE_IMAGE=$BASE_IMAGE is not a local image"
  done_step
else
  # The rootfs is keyed by what goes into it; bump the revision when the trimming changes.
  rootfs_key=$(printf '%s\n' rev2 "$DEBIAN_SUITE" "$DEBIAN_PACKAGES" "$DEBIAN_MIRROR" | sha256sum | cut -c1-12)
  keyed_image=$DEBIAN_IMAGE-$rootfs_key
  BASE_IMAGE=$DEBIAN_IMAGE
  tarball=$WORK/debian-python-$DEBIAN_SUITE-$rootfs_key.tar
  step "base OS image $DEBIAN_IMAGE (debootstrap $DEBIAN_SUITE minbase + $DEBIAN_PACKAGES)"
  if docker image inspect "$keyed_image" >/dev/null 2>&1; then
    docker tag "$keyed_image" "$DEBIAN_IMAGE"
    done_step "cached image"
  else
    if [[ ! -f $tarball ]]; then
      [[ $(id -u) == 0 ]] || die "debootstrap needs root"
      command -v debootstrap >/dev/null || apt_install debootstrap
      rootfs=$WORK/rootfs.tmp
      rm -rf "$rootfs"
      debootstrap --variant=minbase --include="$DEBIAN_PACKAGES" "$DEBIAN_SUITE" "$rootfs" \
        "$DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $WORK/debootstrap.log"
      # Trim what a runtime image never reads: package lists and archives, docs (the
      # copyright files stay), man pages, translations, logs.
      rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
        "$rootfs"/var/lib/dpkg/*-old "$rootfs"/usr/share/man "$rootfs"/usr/share/info \
        "$rootfs"/usr/share/lintian "$rootfs"/usr/share/linda
      find "$rootfs"/usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
      find "$rootfs"/usr/share/doc -mindepth 1 -type d -empty -delete
      find "$rootfs"/usr/share/locale -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
      find "$rootfs"/var/log -type f -exec truncate -s 0 {} +
      tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
      rm -f "$WORK"/debian-python-*.tar
      mv "$tarball.tmp" "$tarball"
      rm -rf "$rootfs"
    fi
    docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["python3"]' \
      "$tarball" "$keyed_image" >/dev/null
    docker tag "$keyed_image" "$DEBIAN_IMAGE"
    done_step "rootfs $(du -h "$tarball" | cut -f1)"
  fi
fi

# --- 3. wheels, built on the host ----------------------------------------------------------
# The image's python3 is 3.11 like the host's, so the host's cp311 manylinux wheels fit.
context=$WORK/context
if [[ " $IMAGES " == *" base "* || " $IMAGES " == *" operator "* ]]; then
step "wheels (project + dependencies)"
buildenv=$WORK/buildenv
if [[ ! -x $buildenv/bin/pip ]]; then
  rm -rf "$buildenv"
  python3 -m venv "$buildenv"
fi
# Outside the if: an older cached build environment is upgraded (a no-op when it fits).
"$buildenv/bin/pip" install -q --disable-pip-version-check "hatchling>=1.27"
requirements=$WORK/requirements
mkdir -p "$requirements"
# requirements.txt: the core (the job runtime); -client: the [client] extra alone, added on
# top of the core by the example image (its handlers create jobs); -operator: the core, the
# client and kopf & co. An extra naming the project itself (backgroundjobs[client]) is
# expanded into that extra's requirements.
python3 - "$root/pyproject.toml" "$requirements" <<'PY'
import re, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
extras = project["optional-dependencies"]

def expand(reqs):
    for req in reqs:
        own = re.fullmatch(re.escape(project["name"]) + r"\[([\w,\s-]+)\]", req.strip())
        if own:
            for extra in own.group(1).split(","):
                yield from expand(extras[extra.strip()])
        else:
            yield req

core = project["dependencies"]
for suffix, reqs in (("", core), ("-client", extras["client"]), ("-operator", [*core, *extras["operator"]])):
    lines = dict.fromkeys(expand(reqs))
    open(f"{sys.argv[2]}/requirements{suffix}.txt", "w").write("\n".join(lines) + "\n")
PY
# Pin the versions the project's venv was tested with, where it has them.
constraints=$WORK/constraints.txt
: >"$constraints"
if [[ -x $CACHE/venv/bin/pip ]]; then
  "$CACHE/venv/bin/pip" freeze --exclude-editable --disable-pip-version-check 2>/dev/null \
    | grep -E '^[A-Za-z0-9_.-]+==' >"$constraints" || true
fi
deps_key=$(cat "$requirements"/*.txt "$constraints" | sha256sum | cut -c1-12)
deps_dir=$WORK/wheels-deps-$deps_key
if [[ ! -f $deps_dir/.complete ]]; then
  rm -rf "$deps_dir"
  "$buildenv/bin/pip" wheel -q --disable-pip-version-check --wheel-dir "$deps_dir" \
    -r "$requirements/requirements-operator.txt" pip -c "$constraints"
  cp "$requirements"/*.txt "$deps_dir/"
  touch "$deps_dir/.complete"
  find "$WORK" -maxdepth 1 -name 'wheels-deps-*' ! -name "wheels-deps-$deps_key" -exec rm -rf {} +
fi
rm -rf "$context"
mkdir -p "$context/wheels/deps" "$context/wheels/project"
cp -p "$deps_dir"/*.whl "$deps_dir"/*.txt "$context/wheels/deps/"
"$buildenv/bin/pip" wheel -q --disable-pip-version-check --no-deps --no-build-isolation \
  --wheel-dir "$context/wheels/project" "$root"
done_step "$(ls "$context"/wheels/*/*.whl | wc -l) wheels"
fi

# --- 4. the images -------------------------------------------------------------------------
docker_build() { # log tag dockerfile context [build args...]
  local log=$1 tag=$2 dockerfile=$3 ctx=$4
  shift 4
  docker build --network=none --build-arg "VERSION=$version" "$@" \
    -f "$dockerfile" -t "$tag" "$ctx" >>"$log" 2>&1 || {
    tail -50 "$log" >&2
    die "building $tag failed; see $log"
  }
}
build() { # tag dockerfile context [build args...]
  local tag=$1 dockerfile=$2 ctx=$3 log cache_tag
  shift 3
  cache_tag=${tag#backgroundjobs/}
  log=$WORK/build-${tag//[\/:]/_}.log
  : >"$log"
  step "docker build $tag"
  if grep -q ' AS install$' "$dockerfile"; then
    # Tag the install stage: it holds the layer cache of the dependencies, which a prune of
    # untagged images would otherwise delete.
    docker_build "$log" "backgroundjobs/build-cache:${cache_tag/:/-}" "$dockerfile" "$ctx" \
      --target install "$@"
  fi
  docker_build "$log" "$tag" "$dockerfile" "$ctx" "$@"
  done_step "$(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
}
for image in $IMAGES; do
  case $image in
    base) build "backgroundjobs/base:$version" "$root/job_images/base/Dockerfile" "$context" \
      --build-arg "BASE_IMAGE=$BASE_IMAGE" ;;
    examples)
      # Its handlers and the wheels of the client (notifications.send_bulk creates jobs).
      examples_context=$WORK/context-examples
      rm -rf "$examples_context"
      mkdir -p "$examples_context"
      cp -r "$root/job_images/examples/bgj_examples" "$context/wheels" "$examples_context/"
      build "backgroundjobs/examples:$version" "$root/job_images/examples/Dockerfile" \
        "$examples_context" --build-arg "BASE_IMAGE=backgroundjobs/base:$version" ;;
    operator) build "backgroundjobs/operator:$version" "$root/operator/Dockerfile" "$context" \
      --build-arg "BASE_IMAGE=$BASE_IMAGE" ;;
    pause|coredns)
      # One context with both binaries: the classic builder builds every stage up to the
      # target, so the coredns image's build also needs the pause binary.
      node_context=$WORK/node-context
      rm -rf "$node_context"; mkdir -p "$node_context"
      for binary in "$CACHE/bin/pause" "$CACHE/bin/coredns"; do
        [[ -x $binary ]] || die "$binary is missing (hack/build-cluster-tools.sh node)"
        cp "$binary" "$node_context/"
      done
      tag=$K8S_VERSION; [[ $image == coredns ]] && tag=$COREDNS_VERSION
      build "backgroundjobs/$image:$tag" "$root/hack/node/Dockerfile" "$node_context" \
        --target "$image" --build-arg "BASE_IMAGE=$BASE_IMAGE" ;;
    *) die "unknown image $image (base, examples, operator, pause, coredns)" ;;
  esac
done
# Superseded builds of these images (untagged now) would pile up at every source change.
docker image prune -f --filter label=dev.backgroundjobs.build >/dev/null
echo "[images] all done in $((SECONDS - total_start))s"
docker images --format '  {{.Repository}}:{{.Tag}}\t{{.Size}}' | grep '^  backgroundjobs/' || true
