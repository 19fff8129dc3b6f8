#include "macros.h"
RVTEST_BEGIN
    la s0, buf
    li s1, 0x8180ff7f
    sw s1, 0(s0)
    // loads of each width at each legal alignment, signed and unsigned
    lb x14, 0(s0);  CHECK(2, x14, 0x0000007f)
    lb x14, 1(s0);  CHECK(3, x14, 0xffffffff)
    lb x14, 2(s0);  CHECK(4, x14, 0xffffff80)
    lb x14, 3(s0);  CHECK(5, x14, 0xffffff81)
    lbu x14, 1(s0); CHECK(6, x14, 0x000000ff)
    lbu x14, 3(s0); CHECK(7, x14, 0x00000081)
    lh x14, 0(s0);  CHECK(8, x14, 0xffffff7f)
    lh x14, 2(s0);  CHECK(9, x14, 0xffff8180)
    lhu x14, 0(s0); CHECK(10, x14, 0x0000ff7f)
    lhu x14, 2(s0); CHECK(11, x14, 0x00008180)
    lw x14, 0(s0);  CHECK(12, x14, 0x8180ff7f)
    // negative offsets
    addi s2, s0, 4
    lw x14, -4(s2); CHECK(13, x14, 0x8180ff7f)
    lbu x14, -2(s2); CHECK(14, x14, 0x00000080)
    // byte stores into each lane leave the others alone
    sw zero, 4(s0)
    li x1, 0x123456aa
    sb x1, 5(s0)
    lw x14, 4(s0);  CHECK(20, x14, 0x0000aa00)
    li x1, 0xbb
    sb x1, 7(s0)
    lw x14, 4(s0);  CHECK(21, x14, 0xbb00aa00)
    sb x1, 4(s0)
    sb x1, 6(s0)
    lw x14, 4(s0);  CHECK(22, x14, 0xbbbbaabb)
    // halfword stores at both halves
    li x1, 0xdead1234
    sh x1, 8(s0)
    li x1, 0x5678
    sh x1, 10(s0)
    lw x14, 8(s0);  CHECK(23, x14, 0x56781234)
    // word store, and a load into x0 changes nothing
    li x1, 0xcafef00d
    sw x1, 12(s0)
    lw x0, 12(s0)
    li TESTNUM, 24
    bne x0, zero, fail
    lw x14, 12(s0); CHECK(25, x14, 0xcafef00d)
    // store then load back through another base
    addi s3, s0, 16
    sw s1, -4(s3)
    lw x14, 12(s0); CHECK(26, x14, 0x8180ff7f)

    // misaligned accesses trap; mtval is the address; rd and memory are unchanged
    li x14, 0x55
    TRAP_BEGIN(40)
    lh x14, 1(s0)
    TRAP_END(4)
    addi x7, s0, 1; bne x30, x7, fail; CHECK(41, x14, 0x55)
    TRAP_BEGIN(42)
    lhu x14, 3(s0)
    TRAP_END(4)
    addi x7, s0, 3; bne x30, x7, fail
    TRAP_BEGIN(43)
    lw x14, 2(s0)
    TRAP_END(4)
    addi x7, s0, 2; bne x30, x7, fail
    TRAP_BEGIN(44)
    lw x14, 1(s0)
    TRAP_END(4)
    TRAP_BEGIN(45)
    lw x14, 3(s0)
    TRAP_END(4)
    TRAP_BEGIN(46)
    sh x1, 1(s0)
    TRAP_END(6)
    addi x7, s0, 1; bne x30, x7, fail
    TRAP_BEGIN(47)
    sw x1, 2(s0)
    TRAP_END(6)
    TRAP_BEGIN(48)
    sw x1, 3(s0)
    TRAP_END(6)
    addi x7, s0, 3; bne x30, x7, fail
    lw x14, 0(s0); CHECK(49, x14, 0x8180ff7f)

    // access faults: unmapped loads, stores to ROM
    li s4, 0xfffffff0
    TRAP_BEGIN(60)
    lw x14, 0(s4)
    TRAP_END(5)
    bne x30, s4, fail
    TRAP_BEGIN(61)
    sw x1, 0x100(zero)
    TRAP_END(7)
    li x7, 0x100; bne x30, x7, fail
    TRAP_BEGIN(62)
    sb x1, 3(s4)
    TRAP_END(7)
RVTEST_END

    .data
    .balign 16
buf: .space 64
