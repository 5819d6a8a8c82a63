#!/usr/bin/env bash
# Build one container image per function (functions/*/) from the repository's Dockerfile:
# <IMAGE_REPOSITORY>/<function>:<IMAGE_TAG>. `make images` runs this.
#
# Environment:
#   IMAGE_REPOSITORY  registry and path the function name is appended to (default ghcr.io/dueflow)
#   IMAGE_TAG         the tag (default: the commit, short, with -dirty for uncommitted changes);
#                     "latest" is refused: deployments name the exact images they run
#   ENGINE            docker or podman (default: the first of them that answers)
#   PUSH=1            push each image after building it
#   PLATFORM          e.g. linux/amd64 (default: the engine's own)
#   FUNCTIONS         a space-separated subset to build (default: all)
#
# Needs a container engine: a docker or podman client alone (with no daemon or machine behind it)
# is not enough, and the script says so instead of failing halfway.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
    echo "images: $*" >&2
    exit 1
}

# The first engine whose client is installed and whose daemon (or podman machine) answers.
find_engine() {
    local candidate clients=()
    for candidate in ${ENGINE:-docker podman}; do
        command -v "$candidate" >/dev/null 2>&1 || continue
        clients+=("$candidate")
        if "$candidate" info >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    if ((${#clients[@]} == 0)); then
        die "no container engine: neither docker nor podman is installed. Install Docker Engine \
or Podman (or set ENGINE), then run make images again."
    fi
    die "no container engine: ${clients[*]} is installed but no engine answers ('${clients[0]} \
info' fails: is the Docker daemon running / the podman machine started, and may this user use \
it?). Nothing was built."
}

default_tag() {
    local tag
    tag=$(git rev-parse --short=12 HEAD 2>/dev/null) || die "IMAGE_TAG is not set and this is \
no git checkout: set IMAGE_TAG"
    if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
        tag="${tag}-dirty"
    fi
    echo "$tag"
}

repository=${IMAGE_REPOSITORY:-ghcr.io/dueflow}
tag=${IMAGE_TAG:-$(default_tag)}
[[ "$tag" != latest ]] || die "IMAGE_TAG=latest is refused: tag images with the commit they \
were built from"
[[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "IMAGE_TAG '$tag' is not a valid tag"

available=()
for main in functions/*/main.py; do
    available+=("$(basename "$(dirname "$main")")")
done
read -r -a functions <<<"${FUNCTIONS:-${available[*]}}"
for function in "${functions[@]}"; do
    [[ -f "functions/$function/main.py" ]] || die "no function '$function' (have: ${available[*]})"
done

engine=$(find_engine)
platform_args=()
if [[ -n "${PLATFORM:-}" ]]; then
    platform_args=(--platform "$PLATFORM")
fi

built=()
for function in "${functions[@]}"; do
    image="$repository/$function:$tag"
    echo "images: building $image with $engine" >&2
    "$engine" build "${platform_args[@]}" \
        --build-arg "FUNCTION=$function" \
        --label "org.opencontainers.image.revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
        --tag "$image" \
        --file Dockerfile .
    if [[ "${PUSH:-0}" == 1 ]]; then
        "$engine" push "$image"
    fi
    built+=("$image")
done

echo "images: built ${#built[@]} image(s):" >&2
printf '  %s\n' "${built[@]}" >&2
