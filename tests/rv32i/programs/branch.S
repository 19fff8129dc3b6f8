#include "macros.h"
// BR_TAKEN / BR_NOT: the branch must (not) be taken for v1, v2
#define BR_TAKEN(n, inst, v1, v2) \
    li TESTNUM, n; li x1, v1; li x2, v2; inst x1, x2, 1f; j fail; 1:
#define BR_NOT(n, inst, v1, v2) \
    li TESTNUM, n; li x1, v1; li x2, v2; inst x1, x2, fail;

RVTEST_BEGIN
    BR_TAKEN(2, beq, 0x80000000, 0x80000000)
    BR_NOT(3, beq, 0, 1)
    BR_TAKEN(4, bne, 0, 0x80000000)
    BR_NOT(5, bne, -1, -1)
    BR_TAKEN(6, blt, 0x80000000, 0x7fffffff)
    BR_NOT(7, blt, 0x7fffffff, 0x80000000)
    BR_NOT(8, blt, 3, 3)
    BR_TAKEN(9, blt, -2, -1)
    BR_TAKEN(10, bge, 3, 3)
    BR_TAKEN(11, bge, 0x7fffffff, 0x80000000)
    BR_NOT(12, bge, -1, 0)
    BR_TAKEN(13, bltu, 0x7fffffff, 0x80000000)
    BR_NOT(14, bltu, 0xffffffff, 0)
    BR_NOT(15, bltu, 5, 5)
    BR_TAKEN(16, bgeu, 0xffffffff, 0)
    BR_TAKEN(17, bgeu, 5, 5)
    BR_NOT(18, bgeu, 0, 0x80000000)
    // a backward branch
    li TESTNUM, 19
    li x1, 3
20: addi x1, x1, -1
    bnez x1, 20b
    bnez x1, fail

    // jal links pc + 4; jal x0 links nothing
    li TESTNUM, 30
    jal x5, 31f
32: j fail
31: la x7, 32b
    bne x5, x7, fail
    jal x0, 33f
    j fail
33:
    // jalr: target = (rs1 + imm) & ~1, link pc + 4, rd = rs1 works
    li TESTNUM, 34
    la x6, 35f
    jalr x5, 1(x6)            // bit 0 is dropped
    j fail
35: la x7, 35b - 4
    bne x5, x7, fail
    la x8, 36f
    li TESTNUM, 37
    jalr x8, 0(x8)
36: la x7, 36b
    bne x8, x7, fail
    li TESTNUM, 38
    la x6, 39f - 8
    jalr x0, 8(x6)
    j fail
39:
    // misaligned targets trap at the jump, which writes no link register
    li x5, 0x77
    TRAP_BEGIN(50)
    jal x5, .+6
    TRAP_END(0)
    la x7, 90b + 6; bne x30, x7, fail; CHECK(51, x5, 0x77)
    la x6, 52f
    TRAP_BEGIN(53)
    jalr x5, 2(x6)
    TRAP_END(0)
    addi x7, x6, 2; bne x30, x7, fail; CHECK(54, x5, 0x77)
    li x1, 1
    TRAP_BEGIN(55)
    beq x1, x1, .+10
    TRAP_END(0)
    la x7, 90b + 10; bne x30, x7, fail
    TRAP_BEGIN(56)
    bltu x0, x1, .-6
    TRAP_END(0)
    la x7, 90b - 6; bne x30, x7, fail
    // a branch that is not taken does not trap, whatever its target
    li TESTNUM, 57
    bne x1, x1, .+6
    // fetch from an unmapped address: access fault with mepc = mtval = the target
    la x27, 58f
    li x6, 0xf0000000
    li x29, -1
    jalr x5, 0(x6)
    j fail
58: la x27, unexpected_trap
    CHECK(59, x29, 1)
    bne x30, x6, fail
    bne x31, x6, fail
52: nop
RVTEST_END
