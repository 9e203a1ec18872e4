#!/usr/bin/env bash
# Installs the grading environment: .venv pinned by constraints.txt (torch==2.13.0 CPU and the
# rest, so grades are reproducible), the book's package d2l for students' notebooks, and
# bubblewrap, the sandbox, where apt-get can install it.
#   ./install.sh          the grader
#   ./install.sh --test   the grader, pytest, and what the tests need (bubblewrap, libseccomp2 to check the
#                         seccomp filter's syscall numbers, chromium and CJK fonts for the
#                         reports in a real browser, gettext for msgfmt --check on the catalogs)
set -euo pipefail
cd "$(dirname "$0")"
extras="kernel" packages="bubblewrap"
if [ "${1:-}" = "--test" ]; then
  extras="kernel,test" packages="bubblewrap chromium fonts-noto-cjk gettext libseccomp2"
fi
missing=""
for pkg in $packages; do dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "install.sh: could not install$missing (needs root and apt-get); grading will run WITHOUT a sandbox." >&2
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
pip() {
  if ! .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt "$@" > .venv/pip.log 2>&1; then
    grep -v "^WARNING: Location" .venv/pip.log >&2
    exit 1
  fi
}
pip -e ".[$extras]"
# d2l pins numpy 1.23, matplotlib 3.7, pandas 2.0, ...: installed alone, it keeps our pins; what
# its torch module imports comes with the "kernel" extra above.
pip --no-deps d2l
# Lets torchvision import where its C++ ops cannot load (CPU torch, PyPI torchvision): see grader/torchvision_shim.py.
# A copy in site-packages, not the grader package: the sandboxed kernel sees site-packages only.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
rm -f "$site/grader-environment.pth"
cp grader/torchvision_shim.py "$site/_torchvision_shim.py"
echo "import _torchvision_shim; _torchvision_shim.install_import_hooks()" > "$site/torchvision-shim.pth"
