"""The benchmark scripts' shared report helpers: the CPU read from /proc/cpuinfo, and the .json/.md pair."""

from __future__ import annotations

import json
from pathlib import Path

from paraxl.evaluation.bench_report import cpu_info, present_flags, write_report

CPUINFO = """\
processor\t: 0
model name\t: Example CPU @ 2.0GHz
flags\t\t: fpu sse2 avx2 avx512f avx512_vnni

processor\t: 1
model name\t: Another name (not read: the first one counts)
flags\t\t: fpu amx_tile
"""


def test_cpu_info_reads_the_first_model_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO, encoding="utf-8")
    cpu = cpu_info(("avx2", "amx_tile", "avx512_vnni"), path)
    assert cpu["model"] == "Example CPU @ 2.0GHz"
    assert cpu["flags"] == {"avx2": True, "amx_tile": False, "avx512_vnni": True}  # in the order asked for
    assert present_flags(cpu) == ["avx2", "avx512_vnni"]
    assert cpu["available_cpus"] >= 1 and cpu["physical_cores"] >= 1


def test_cpu_info_without_proc_cpuinfo(tmp_path: Path) -> None:
    cpu = cpu_info(("avx2",), tmp_path / "absent")
    assert cpu["model"] == "unknown" and cpu["flags"] == {"avx2": False} and present_flags(cpu) == []


def test_write_report_writes_both_files(tmp_path: Path) -> None:
    stem = tmp_path / "results" / "smoke"
    write_report(stem, {"x": [1, 2]}, "# smoke\n")
    assert json.loads((tmp_path / "results" / "smoke.json").read_text()) == {"x": [1, 2]}
    assert (tmp_path / "results" / "smoke.md").read_text() == "# smoke\n"
    assert sorted(path.name for path in stem.parent.iterdir()) == ["smoke.json", "smoke.md"]  # no temp files left
