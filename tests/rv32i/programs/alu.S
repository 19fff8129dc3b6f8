#include "macros.h"
RVTEST_BEGIN
    TEST_RR(2, add, 0x00000000, 0x00000000, 0x00000000)
    TEST_RR(3, add, 0x80000000, 0x7fffffff, 0x00000001)
    TEST_RR(4, add, 0x00000000, 0xffffffff, 0x00000001)
    TEST_RR(5, sub, 0xffffffff, 0x00000000, 0x00000001)
    TEST_RR(6, sub, 0x7fffffff, 0x80000000, 0x00000001)
    TEST_RR(7, and, 0x0f000f00, 0xff00ff00, 0x0f0f0f0f)
    TEST_RR(8, or,  0xff0fff0f, 0xff00ff00, 0x0f0f0f0f)
    TEST_RR(9, xor, 0xf00ff00f, 0xff00ff00, 0x0f0f0f0f)
    TEST_RR(10, slt, 1, 0x80000000, 0x7fffffff)
    TEST_RR(11, slt, 0, 0x7fffffff, 0x80000000)
    TEST_RR(12, slt, 0, 5, 5)
    TEST_RR(13, sltu, 0, 0x80000000, 0x7fffffff)
    TEST_RR(14, sltu, 1, 0x00000000, 0xffffffff)
    TEST_RR(15, sll, 0x80000001, 0x80000001, 0)
    TEST_RR(16, sll, 0x80000000, 0x00000001, 31)
    TEST_RR(17, sll, 0x00000002, 0x00000001, 33)          // only rs2[4:0] counts
    TEST_RR(18, srl, 0x00000001, 0x80000000, 31)
    TEST_RR(19, srl, 0x80000000, 0x80000000, 0)
    TEST_RR(20, srl, 0x7fffffff, 0xffffffff, 0xffffffe1)  // shift by 1
    TEST_RR(21, sra, 0xffffffff, 0x80000000, 31)
    TEST_RR(22, sra, 0xc0000000, 0x80000000, 1)
    TEST_RR(23, sra, 0x3fffffff, 0x7fffffff, 1)
    TEST_RR(24, sra, 0x80000000, 0x80000000, 0)
    TEST_RI(30, addi, 0xffffffff, 0x00000000, -1)         // immediates sign-extend
    TEST_RI(31, addi, 0x800007fe, 0x7fffffff, 2047)
    TEST_RI(32, addi, 0x7ffff800, 0x80000000, -2048) // wraps past the bottom
    TEST_RI(33, andi, 0xfffff800, 0xffffffff, -2048)
    TEST_RI(34, ori, 0xffffffff, 0x00000000, -1)
    TEST_RI(35, xori, 0xffffff00, 0x000000ff, -1)
    TEST_RI(36, slti, 1, 0xffffffff, 0)
    TEST_RI(37, slti, 0, 0x00000000, -1)
    TEST_RI(38, sltiu, 1, 0x00000000, -1)                 // -1 compares as 0xffffffff
    TEST_RI(39, sltiu, 0, 0xffffffff, -1)
    TEST_RI(40, slli, 0x80000000, 0x00000001, 31)
    TEST_RI(41, slli, 0x12345678, 0x12345678, 0)
    TEST_RI(42, srli, 0x00000001, 0x80000000, 31)
    TEST_RI(43, srli, 0x12345678, 0x12345678, 0)
    TEST_RI(44, srai, 0xffffffff, 0x80000000, 31)
    TEST_RI(45, srai, 0xf8000000, 0x80000000, 4)
    TEST_RI(46, srai, 0x87654321, 0x87654321, 0)
    // x0 is never written
    li TESTNUM, 50
    li x1, 123
    add x0, x1, x1
    addi x0, x0, 5
    lui x0, 0x12345
    bne x0, zero, fail
    // lui / auipc
    lui x14, 0xfffff
    CHECK(51, x14, 0xfffff000)
    lui x14, 0x80000
    CHECK(52, x14, 0x80000000)
60: auipc x14, 0
    la x15, 60b
    li TESTNUM, 53
    bne x14, x15, fail
61: auipc x14, 0xfffff                                    // pc - 4096
    la x15, 61b
    sub x14, x15, x14
    CHECK(54, x14, 4096)
    // rd = rs1 = rs2
    li x14, 7
    add x14, x14, x14
    CHECK(55, x14, 14)
RVTEST_END
