"""Where the runner puts things on the phone and the sh scripts it runs there.

Layout (as Qualcomm's snpe_bench.py, which uses ``/data/local/tmp/snpebm``)::

    /data/local/tmp/snpebm/bin/snpe-net-run
    /data/local/tmp/snpebm/lib/*.so         -> LD_LIBRARY_PATH
    /data/local/tmp/snpebm/dsp/*.so         -> ADSP_LIBRARY_PATH (DSP runtime only)
    /data/local/tmp/snpebm/work/            model.dlc, input_*.raw, input lists, out/, logs/
    /data/local/tmp/snpebm/.netadapt_stamp  hash of what was pushed (push once per SDK)

``ADSP_LIBRARY_PATH`` is quoted and ``;``-separated, and must keep the system DSP directories
(SNPE reference guide, "DSP Runtime Environment"; snpe_bench's generated
``snpe-bench_cmds.sh``).
"""

from __future__ import annotations

import shlex

DEVICE_ROOT = "/data/local/tmp/snpebm"
BIN_DIR = f"{DEVICE_ROOT}/bin"
LIB_DIR = f"{DEVICE_ROOT}/lib"
DSP_DIR = f"{DEVICE_ROOT}/dsp"
WORK_DIR = f"{DEVICE_ROOT}/work"
STAMP = f"{DEVICE_ROOT}/.netadapt_stamp"
NET_RUN = f"{BIN_DIR}/snpe-net-run"

SYSTEM_DSP_DIRS = ("/system/lib/rfsa/adsp", "/system/vendor/lib/rfsa/adsp", "/dsp")

# exit status of the loop when snpe-net-run left no diagnostic log
NO_LOG_RC = 97


def environment() -> str:
    """``export`` lines that let snpe-net-run find its libraries."""
    adsp = ";".join((DSP_DIR, *SYSTEM_DSP_DIRS))
    return f'export LD_LIBRARY_PATH={LIB_DIR}:$LD_LIBRARY_PATH ADSP_LIBRARY_PATH="{adsp}"'


def net_run_command(flags: list[str], input_list: str, output_dir: str) -> str:
    """One snpe-net-run invocation, run from WORK_DIR (``output_dir`` may hold ``$i``)."""
    head = shlex.join([NET_RUN, "--container", "model.dlc", "--input_list", input_list])
    return f"{head} --output_dir {output_dir} {shlex.join(flags)}".rstrip()


def timing_loop_script(flags: list[str], input_list: str, invocations: int) -> str:
    """Run snpe-net-run ``invocations`` times; keep each run's diagnostic log as logs/N.log.

    Each invocation writes SNPEDiag.log (2.x) or SNPEDiag_0.log (1.x) into its own output
    directory; that log (the first match) is moved to logs/N.log and the output tensors are
    deleted. A missing log ends the loop with NO_LOG_RC.
    """
    steps = [
        environment(),
        f"cd {WORK_DIR}",
        "rm -rf out logs",
        "mkdir -p out logs",
    ]
    body = (
        f"{net_run_command(flags, input_list, 'out/$i')} || exit $?; "
        'set -- out/$i/SNPEDiag*.log && [ -f "$1" ] && mv "$1" logs/$i.log '
        f"|| exit {NO_LOG_RC}; "
        "rm -rf out/$i"
    )
    numbers = " ".join(str(i) for i in range(invocations))
    steps.append(f"for i in {numbers}; do {body}; done")
    return " && ".join(steps[:-1]) + " && " + steps[-1]


def log_path(index: int) -> str:
    """Device path of the diagnostic log of invocation ``index``."""
    return f"{WORK_DIR}/logs/{index}.log"
