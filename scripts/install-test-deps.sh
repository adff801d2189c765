#!/usr/bin/env bash
# Installs the system packages the test suite uses, when they are missing: git (the tests
# inspect the registry's repository with it) and the PostgreSQL client tools.
set -euo pipefail

missing=()
command -v git >/dev/null || missing+=(git)
command -v pg_isready >/dev/null || missing+=(postgresql-client)

if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
else
    echo "all present"
fi
