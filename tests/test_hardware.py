"""bf16 detection from /proc/cpuinfo (fixture files for each kind of CPU), and the warning it drives."""

from __future__ import annotations

import pytest

from forethought import _hardware
from forethought._hardware import cpu_flags, native_bf16, warn_if_emulated_bf16

X86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 {extra}\nbugs\t\t: \n\nprocessor\t: 1\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd {extra}\nCPU implementer\t: 0x41\n"


@pytest.mark.parametrize("text, expected", [
    (X86.format(extra="avx512f avx512_bf16"), True),   # Zen 4 / Cooper Lake and later
    (X86.format(extra="amx_bf16 amx_tile"), True),     # Sapphire Rapids
    (X86.format(extra="avx512f"), False),              # AVX-512 without its BF16 extension
    (X86.format(extra=""), False),                     # AVX2 only: bf16 is emulated
    (ARM.format(extra="bf16 i8mm"), True),
    (ARM.format(extra="sve"), False),
    ("processor\t: 0\n", None),                        # no flags line: unknown
])
def test_native_bf16_reads_the_cpu_flags(tmp_path, text, expected):
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    assert native_bf16("cpu", cpuinfo=path) is expected


def test_unknown_when_cpuinfo_is_missing_or_the_device_is_not_a_cpu(tmp_path):
    assert cpu_flags(tmp_path / "absent") is None
    assert native_bf16("cpu", cpuinfo=tmp_path / "absent") is None
    assert native_bf16("mps") is None


def test_the_warning_fires_only_where_bf16_is_known_to_be_emulated(monkeypatch):
    for answer, warns in ((False, True), (True, False), (None, False)):
        monkeypatch.setattr(_hardware, "native_bf16", lambda device, answer=answer: answer)
        if warns:
            with pytest.warns(UserWarning, match="drop --bf16"):
                assert warn_if_emulated_bf16("cpu") is True
        else:
            assert warn_if_emulated_bf16("cpu") is False


def test_available_memory_reads_meminfo(tmp_path):
    path = tmp_path / "meminfo"
    path.write_text("MemTotal:       24683856 kB\nMemFree:         1000 kB\nMemAvailable:   12000000 kB\n")
    assert _hardware.available_memory_bytes(path) == 12000000 * 1024
    path.write_text("MemTotal:       24683856 kB\n")  # a kernel without MemAvailable: unknown
    assert _hardware.available_memory_bytes(path) is None
    assert _hardware.available_memory_bytes(tmp_path / "absent") is None
