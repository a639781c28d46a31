"""Which machine a job ran on: what its record says of the hardware its speed depends on."""

from __future__ import annotations

from pathlib import Path

from vitbn_sweep.results import cpu_id, machine

GENOA = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC
stepping\t: 0
"""
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n"


def test_the_cpu_id_names_the_exact_chip_of_the_first_cpu(tmp_path: Path) -> None:
    (tmp_path / "x86").write_text(GENOA)
    assert cpu_id(tmp_path / "x86") == "AuthenticAMD family 25 model 17 stepping 1"


def test_without_x86_fields_or_cpuinfo_the_cpu_id_is_empty(tmp_path: Path) -> None:
    (tmp_path / "arm").write_text(ARM)
    assert cpu_id(tmp_path / "arm") == ""
    assert cpu_id(tmp_path / "missing") == ""


def test_two_cpus_of_one_name_are_two_machines_but_two_hosts_of_one_chip_are_one() -> None:
    def cpu(hostname: str, chip: str) -> dict:
        host = {"hostname": hostname, "cpu": "AMD EPYC", "cpu_capability": "AVX512"}
        return {"device": "cpu", "host": {**host, "cpu_id": chip}}

    zen4, zen3 = "AuthenticAMD family 25 model 17 stepping 1", "AuthenticAMD family 25 model 1"
    assert machine(cpu("vm", zen4)) == f"cpu (AMD EPYC, AVX512, {zen4})"
    assert machine(cpu("vm", zen4)) != machine(cpu("vm", zen3))
    assert machine(cpu("node1", zen4)) == machine(cpu("node2", zen4))


def test_a_cuda_job_is_told_by_its_gpu_and_older_records_by_their_device() -> None:
    gpu = {"device": "cuda", "host": {"hostname": "vm", "cpu": "AMD EPYC", "gpu": "NVIDIA H200"}}
    assert machine(gpu) == "cuda (NVIDIA H200)"
    assert machine({"device": "cuda", "host": {"hostname": "vm"}}) == "cuda"
    assert machine({"device": "cpu", "host": {"hostname": "vm"}}) == "cpu"
    assert machine({"device": "cpu"}) == "cpu"
    assert machine({"status": "failed", "device": None}) is None
