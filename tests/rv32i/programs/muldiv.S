#include "macros.h"
// The M extension (run on the rv32im core); corner cases from the ISA manual's table.
RVTEST_BEGIN
    TEST_RR(2, mul, 0x00001200, 0x00007e00, 0xb6db6db7)
    TEST_RR(3, mul, 0x00000001, 0xffffffff, 0xffffffff)
    TEST_RR(4, mul, 0x80000000, 0x80000000, 0xffffffff)
    TEST_RR(5, mulh, 0xffffffff, 0xffffffff, 0x00000001)
    TEST_RR(6, mulh, 0x40000000, 0x80000000, 0x80000000)
    TEST_RR(7, mulh, 0xc0000000, 0x80000000, 0x7fffffff)
    TEST_RR(8, mulhu, 0xfffffffe, 0xffffffff, 0xffffffff)
    TEST_RR(9, mulhu, 0x40000000, 0x80000000, 0x80000000)
    TEST_RR(10, mulhsu, 0xffffffff, 0xffffffff, 0xffffffff)
    TEST_RR(11, mulhsu, 0x80000000, 0x80000000, 0xffffffff)
    TEST_RR(12, mulhsu, 0x00000000, 0x00000001, 0xffffffff)
    TEST_RR(20, div, 3, 20, 6)
    TEST_RR(21, div, -3, -20, 6)
    TEST_RR(22, div, -3, 20, -6)
    TEST_RR(23, div, 3, -20, -6)
    TEST_RR(24, div, 0x80000000, 0x80000000, -1)       // overflow
    TEST_RR(25, div, -1, 0x80000000, 0)                // by zero
    TEST_RR(26, div, -1, 7, 0)
    TEST_RR(27, divu, 0x3fffffff, 0xffffffff, 4)
    TEST_RR(28, divu, 0xffffffff, 5, 0)
    TEST_RR(29, divu, 0, 5, 6)
    TEST_RR(30, rem, 2, 20, 6)
    TEST_RR(31, rem, -2, -20, 6)
    TEST_RR(32, rem, 2, 20, -6)
    TEST_RR(33, rem, -2, -20, -6)
    TEST_RR(34, rem, 0, 0x80000000, -1)
    TEST_RR(35, rem, 0x80000000, 0x80000000, 0)
    TEST_RR(36, remu, 3, 0xffffffff, 4)
    TEST_RR(37, remu, 0xfffffff0, 0xfffffff0, 0)
    TEST_RR(38, remu, 0x7fffffff, 0x7fffffff, 0x80000000)
    // x0 destination, rd = rs1 = rs2
    li TESTNUM, 40
    li x1, 9
    div x0, x1, x1
    bne x0, zero, fail
    mul x1, x1, x1
    CHECK(41, x1, 81)
    divu x1, x1, x1
    CHECK(42, x1, 1)
    csrr x14, misa
    CHECK(43, x14, 0x40001100)
RVTEST_END
