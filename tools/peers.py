"""Where the peers live: the programs bam-mix is checked and measured against (a Python venv with
torch, transformers, tokenizers, safetensors, gguf and mergekit; llama.cpp's source tree and build),
which `tools/setup-peers` installs outside the checkout. The scripts under tools/ import this module
(they run from tools/, so it is on sys.path) to find them by default; their flags still override.

    $BAM_MIX_PEERS, else ${XDG_CACHE_HOME:-~/.cache}/bam-mix-peers
      venv/bin/python                 PYTHON
      llama.cpp/                      LLAMA_CPP (convert_hf_to_gguf.py, gguf-py/)
      llama.cpp/build/bin/llama-*     LLAMA_BIN
"""
import importlib.util
import os
import sys
from pathlib import Path


def peers_dir() -> Path:
    explicit = os.environ.get("BAM_MIX_PEERS")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "bam-mix-peers"


PEERS = peers_dir()
VENV = PEERS / "venv"
PYTHON = VENV / "bin" / "python"
LLAMA_CPP = PEERS / "llama.cpp"
LLAMA_BIN = LLAMA_CPP / "build" / "bin"
SETUP_HINT = "run tools/setup-peers first (it installs the peers under " + str(PEERS) + ")"


def _missing(modules) -> list:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def in_peers_venv() -> bool:
    # The venv's python is a symlink to the system one, so compare prefixes, not executables.
    return VENV.exists() and Path(sys.prefix).resolve() == VENV.resolve()


def require(*modules, optional=()):
    """Makes sure the running script can import `modules`: when this interpreter lacks one of them
    (or of `optional`) and the peers' venv exists, the script is run again, with the same arguments,
    under the venv's python. A module of `modules` still missing then ends the script with what to do;
    a missing `optional` one is left for the script to skip."""
    missing = _missing(list(modules) + list(optional))
    if not missing:
        return
    if PYTHON.exists() and not in_peers_venv() and not os.environ.get("BAM_MIX_PEERS_REEXEC"):
        os.environ["BAM_MIX_PEERS_REEXEC"] = "1"
        os.execv(str(PYTHON), [str(PYTHON), *sys.argv])
    required = _missing(modules)
    if required:
        sys.exit(f"{os.path.basename(sys.argv[0])} needs the Python packages {', '.join(required)}: {SETUP_HINT}, "
                 f"or run it with a python that has them")


def python_with(*modules) -> str:
    """A python that can import `modules`: this one, else the peers' venv (for subprocesses)."""
    if not _missing(modules) or not PYTHON.exists():
        return sys.executable
    return str(PYTHON)


def llama_tool(name: str) -> Path:
    """A llama.cpp program of the peers' build (e.g. "llama-bench"), which may not exist."""
    return LLAMA_BIN / name


# llama.cpp's logger writes from a worker thread and is never flushed at exit
# (ggml-org/llama.cpp issue 22142): a piped llama-perplexity often loses its last chunks and its
# "Final estimate" line. A preloaded library whose destructor waits a moment lets the worker write
# them out before the process ends. Built once into the peers folder with the system C compiler (cc, else clang).
_FLUSH_SHIM_SOURCE = """
#include <unistd.h>
__attribute__((destructor)) static void bam_mix_wait_for_llama_log(void) { usleep(300000); }
"""


def llama_env(env=None) -> dict:
    """The environment to run a llama.cpp tool in so that its last log lines are not lost."""
    import subprocess
    import tempfile
    env = dict(os.environ if env is None else env)
    shim = PEERS / "llama-log-flush.so"
    if not shim.exists():
        with tempfile.TemporaryDirectory() as d:
            src = Path(d) / "shim.c"
            src.write_text(_FLUSH_SHIM_SOURCE)
            tmp = Path(d) / "shim.so"
            # cc where build-essential is installed; the Swift toolchain's clang otherwise.
            import shutil
            compiler = shutil.which("cc") or shutil.which("clang")
            if compiler is None:
                sys.exit("tools/peers.py: no C compiler (cc or clang) to build the llama.cpp log-flush shim")
            subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(tmp), str(src)], check=True)
            shim.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, shim)
    env["LD_PRELOAD"] = str(shim) + (":" + env["LD_PRELOAD"] if env.get("LD_PRELOAD") else "")
    return env
