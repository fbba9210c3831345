"""What a benchmark ran on, for the header of its report: the CPU model, cores and SIMD flags, the
kernel families bam-mix uses (whatever `BamBench info` and `bam-mix --version` print; "n/a" when a
binary is missing or prints nothing), and the peers' versions. Standard library only."""
import os
import platform
import re
import subprocess
from pathlib import Path

import peers

# The flags that decide which kernels run (OpenBLAS's, llama.cpp's and bam-mix's own).
SIMD_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "n/a"


def cpu_flags() -> list:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in SIMD_FLAGS if f in have]
    except OSError:
        pass
    return []


def _lines(cmd) -> list:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in p.stdout.splitlines() if line.strip()] if p.returncode == 0 else []


def bam_kernels(bam_mix: Path, bam_bench: Path) -> dict:
    """name -> value from `BamBench info` ("name: value" lines) and `bam-mix --version` (its lines
    after the first, when it prints any), so whatever the binaries learn to report shows up here."""
    info = {}
    for line in _lines([str(bam_bench), "info"]):
        if ":" in line:
            k, v = line.split(":", 1)
            info[k.strip()] = v.strip()
    version = _lines([str(bam_mix), "--version"])
    if version:
        info["bam-mix"] = version[0]
        for line in version[1:]:
            k, _, v = line.partition(":")
            info[k.strip()] = v.strip() or line
    return info


def llama_cpp_version() -> str:
    bench = peers.llama_tool("llama-bench")
    if not bench.exists():
        return "n/a (not installed: tools/setup-peers)"
    p = subprocess.run([str(bench), "--version"], capture_output=True, text=True)
    m = re.search(r"version: (.+)", p.stdout + p.stderr)
    source = peers.LLAMA_CPP / ".bam-mix-peers-source"
    return (m.group(1).strip() if m else "unknown") + (f" ({source.read_text().strip()})" if source.exists() else "")


def describe(bam_mix: Path, bam_bench: Path) -> dict:
    kernels = bam_kernels(bam_mix, bam_bench)
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "simd": " ".join(cpu_flags()) or "n/a",
        "openblas": kernels.pop("OpenBLAS kernels", "n/a"),
        # `bam-mix --version` names them ("kernels: avx2 (CPU: ...)"), the one place that reports them.
        "bam-mix kernels": kernels.pop("kernels", "n/a"),
        **kernels,
        "llama.cpp": llama_cpp_version(),
        "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def header(info: dict) -> str:
    return "\n".join(f"  {k:16s} {v}" for k, v in info.items())
