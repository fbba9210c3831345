"""pytest options and shared helpers of bam_mix_torch's tests.

    pytest python/tests --bam-mix .build/debug/bam-mix

Tests that compare with bam-mix itself run the `bam-mix` binary given by --bam-mix (or $BAM_MIX);
tools/test builds it and passes it. Without it they fail with a message saying so.
"""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
FIXTURES = os.path.join(REPO, "Tests", "Fixtures")
sys.path.insert(0, os.path.join(REPO, "python"))


def pytest_addoption(parser):
    parser.addoption("--bam-mix", default=os.environ.get("BAM_MIX"), help="path of the bam-mix binary (tools/test builds it)")


@pytest.fixture(scope="session")
def bam_mix(request):
    path = request.config.getoption("--bam-mix")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("this test runs bam-mix: build it (swift build --product bam-mix) and pass --bam-mix .build/debug/bam-mix "
                    "(tools/test does both)")
    return os.path.abspath(path)


def run(cmd, **kwargs):
    """Runs a command; on failure the assertion shows its output."""
    p = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))} exited with {p.returncode}\nstdout:\n{p.stdout[-4000:]}\nstderr:\n{p.stderr[-4000:]}"
    return p


def finetune_command(nproc=1):
    """The command line that starts the package's finetune on `nproc` processes (CPU, gloo)."""
    if nproc == 1:
        return [sys.executable, "-m", "bam_mix_torch.finetune", "--device", "cpu"]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "bam_mix_torch.finetune", "--device", "cpu"]


def package_env():
    """The environment of a finetune subprocess: the package importable, one thread per process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(REPO, "python") + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env
