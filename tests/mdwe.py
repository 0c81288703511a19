"""Run a command with writable-and-executable memory refused, as systemd's MemoryDenyWriteExecute=yes does.

`python tests/mdwe.py CMD ARGS...` sets Linux's PR_SET_MDWE (6.3+) on itself, which its children
inherit, then execs CMD. `--probe` instead tries to map writable and executable memory and exits 0
only when that is refused.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1


def deny_write_execute() -> None:
    """Refuse memory that is writable and executable (or becomes executable) from now on."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_MDWE) failed (errno {ctypes.get_errno()}): Linux 6.3 or later is needed")


def write_execute_refused() -> bool:
    """Whether a writable and executable mapping is refused in this process."""
    try:
        mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC).close()
    except PermissionError:
        return True
    return False


if __name__ == "__main__":
    deny_write_execute()
    if sys.argv[1:] == ["--probe"]:
        sys.exit(0 if write_execute_refused() else 1)
    os.execvp(sys.argv[1], sys.argv[1:])
