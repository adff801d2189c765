#!/usr/bin/env bash
# Installs the system packages the test suite uses, when they are missing: git (the tests
# inspect the registry's repository with it), the PostgreSQL client tools, and Chromium
# with ChromeDriver for the browser tests.
set -euo pipefail

missing=()
command -v git >/dev/null || missing+=(git)
command -v pg_isready >/dev/null || missing+=(postgresql-client)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)

if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "all present"
fi
