# Sourced by the scripts that make virtualenvs (test.sh, build-wheel.sh,
# test-wheel.sh); defines one function:
#
#   make_venv DIR [PYTHON]
#
# Makes a new, empty virtualenv in DIR (removing what was there) with
# PYTHON (default python3). Debian ships venv's pip bootstrap separately
# (python3-venv): as root with apt-get it is installed when missing,
# otherwise the error says what to install.

make_venv() {
    local dir="$1" python="${2:-python3}"
    mkdir -p "$(dirname "$dir")"
    if "$python" -m venv --clear "$dir"; then
        return
    fi
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        echo "make_venv: $python -m venv failed; installing python3-venv" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        "$python" -m venv --clear "$dir"
    else
        echo "make_venv: $python -m venv failed; install python3-venv (Debian/Ubuntu) and retry" >&2
        return 1
    fi
}
