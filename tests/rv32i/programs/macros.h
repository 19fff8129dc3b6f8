// Self-checking test programs in the style of riscv-tests: TESTNUM (x28) names the case;
// a failed check stores (TESTNUM << 1) | 1 to tohost, the end stores 1. A trap goes to
// trap_entry, which saves mcause, mtval and mepc in x29, x30, x31 and resumes at x27.
#define TESTNUM x28

#define RVTEST_BEGIN                      \
    .section .text.init;                  \
    .globl _start;                        \
_start:                                   \
    la t0, trap_entry;                    \
    csrw mtvec, t0;                       \
    la x27, unexpected_trap;

#define RVTEST_END                        \
pass:                                     \
    li t0, 1;                             \
    la t1, tohost;                        \
    sw t0, 0(t1);                         \
1:  j 1b;                                 \
unexpected_trap:                          \
    li TESTNUM, 1000;                     \
fail:                                     \
    slli t0, TESTNUM, 1;                  \
    ori t0, t0, 1;                        \
    la t1, tohost;                        \
    sw t0, 0(t1);                         \
2:  j 2b;                                 \
    .balign 4;                            \
trap_entry:                               \
    csrr x29, mcause;                     \
    csrr x30, mtval;                      \
    csrr x31, mepc;                       \
    jr x27;                               \
    .section .tohost, "aw", @progbits;    \
    .balign 8;                            \
    .globl tohost;                        \
tohost: .word 0, 0;

// rd = inst(v1, v2) must equal result
#define TEST_RR(n, inst, result, v1, v2)  \
    li TESTNUM, n; li x1, v1; li x2, v2; inst x14, x1, x2; li x7, result; bne x14, x7, fail;

#define TEST_RI(n, inst, result, v1, imm) \
    li TESTNUM, n; li x1, v1; inst x14, x1, imm; li x7, result; bne x14, x7, fail;

// register reg must hold value
#define CHECK(n, reg, value)              \
    li TESTNUM, n; li x7, value; bne reg, x7, fail;

// the code between TRAP_BEGIN and TRAP_END must trap with cause; mepc is its first
// instruction's address (label 90), mtval is then checked by the caller
#define TRAP_BEGIN(n)                     \
    li TESTNUM, n; li x29, -1; la x27, 91f; \
90:
#define TRAP_END(cause)                   \
    j fail;                               \
91: la x27, unexpected_trap; li x7, cause; bne x29, x7, fail; la x7, 90b; bne x31, x7, fail;
