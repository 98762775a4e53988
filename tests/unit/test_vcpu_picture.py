"""The vCPU picture a boot-hang error carries (kernel.vm.vcpus): parsing `info registers -a`."""

from __future__ import annotations

from kernel.vm.vcpus import code_words, parse_registers, summarise, thread_usage

SAMPLE = """CPU#0
RAX=000000000b830cf7 RBX=ffff88800f832640 RCX=0000000000000008 RDX=0000000000000000
RIP=ffffffff8103a866 RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1
ES =0000 0000000000000000 00000000 00000000
CPU#1
RAX=0000000000000000 RBX=0000000000000000 RCX=0000000000000000 RDX=0000000000000000
RIP=00007f00deadbeef RFL=00000002 [-------] CPL=3 II=0 A20=1 SMM=0 HLT=0
"""


def test_each_vcpu_is_read_with_its_rip_flags_and_halt() -> None:
    cpu0, cpu1 = parse_registers(SAMPLE)
    assert (cpu0.index, cpu0.rip, cpu0.interrupts_on, cpu0.user, cpu0.halted) == (0, 0xFFFFFFFF8103A866, True, False,
                                                                                  True)
    assert (cpu1.index, cpu1.rip, cpu1.interrupts_on, cpu1.user, cpu1.halted) == (1, 0x7F00DEADBEEF, False, True,
                                                                                  False)


def test_the_summary_says_whether_a_vcpu_moves_or_waits() -> None:
    moved = SAMPLE.replace("RIP=00007f00deadbeef", "RIP=00007f00deadbef0")
    lines = summarise([parse_registers(SAMPLE), parse_registers(SAMPLE), parse_registers(moved)]).splitlines()
    rips = " ".join(["ffffffff8103a866"] * 3)
    assert lines[0] == f"vCPU 0: kernel, halted 3/3, interrupts off 0/3, RIP stays: {rips}"
    assert lines[1].startswith("vCPU 1: user, halted 0/3, interrupts off 3/3, RIP moves: 7f00deadbeef")


def test_output_without_registers_gives_no_vcpu() -> None:
    assert parse_registers("") == []
    assert summarise([]) == ""


def test_the_stack_rsp_is_read_with_the_registers() -> None:
    text = SAMPLE.replace("RDX=0000000000000000\nRIP=ffffffff8103a866",
                          "RDX=0000000000000000\nRSI=0 RDI=0 RBP=0 RSP=ffffc90000013e58\nRIP=ffffffff8103a866")
    assert parse_registers(text)[0].rsp == 0xFFFFC90000013E58
    assert parse_registers(SAMPLE)[0].rsp == 0  # not in the output: no stack is read


def test_only_words_that_point_into_kernel_text_are_kept_from_a_stack_dump() -> None:
    dump = ("ffffc90000013e58: 0xffffffff81c00ba0 0x0000000000000246\n"
            "ffffc90000013e68: 0xffff88800f832640 0xffffffffc03a1b2c\n"
            "ffffc90000013e78: 0x00007f00deadbeef 0xffffffff819fadc0")
    assert code_words(dump) == [0xFFFFFFFF81C00BA0, 0xFFFFFFFFC03A1B2C, 0xFFFFFFFF819FADC0]
    assert code_words("") == []


def test_thread_usage_gives_each_vcpu_thread_its_state_and_share_of_a_cpu() -> None:
    before = {"CPU 0/TCG": ("R", 10.0), "CPU 1/TCG": ("S", 5.0)}
    after = {"CPU 0/TCG": ("R", 10.5), "CPU 1/TCG": ("S", 5.0)}
    assert thread_usage(before, after, 0.5) == "host threads (state, CPU used): CPU 0/TCG R 100%, CPU 1/TCG S 0%"
    assert thread_usage({}, {}, 0.5) == ""
