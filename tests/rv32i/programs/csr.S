#include "macros.h"
#include "qfab_soc.h"
RVTEST_BEGIN
    // read-modify-write forms on mscratch return the old value
    li x1, 0x12345678
    csrw mscratch, x1
    csrrs x14, mscratch, zero;  CHECK(2, x14, 0x12345678)
    li x2, 0x0000ff00
    csrrs x14, mscratch, x2;    CHECK(3, x14, 0x12345678)
    csrr x14, mscratch;         CHECK(4, x14, 0x1234ff78)
    csrrc x14, mscratch, x1;    CHECK(5, x14, 0x1234ff78)
    csrr x14, mscratch;         CHECK(6, x14, 0x0000a900)
    csrrwi x14, mscratch, 31;   CHECK(7, x14, 0x0000a900)
    csrrsi x14, mscratch, 0x60 & 31; CHECK(8, x14, 31)
    csrrci x14, mscratch, 5;    CHECK(9, x14, 31)
    csrr x14, mscratch;         CHECK(10, x14, 26)
    csrrw x0, mscratch, x1                  // rd = x0: still writes
    csrr x14, mscratch;         CHECK(11, x14, 0x12345678)
    // fixed and masked registers
    csrr x14, misa;             CHECK(20, x14, 0x40000100)
    csrr x14, mhartid;          CHECK(21, x14, 0)
    li x1, -1
    csrw mepc, x1
    csrr x14, mepc;             CHECK(22, x14, 0xfffffffc)
    csrw mstatus, x1
    csrr x14, mstatus;          CHECK(23, x14, 0x00001888)
    csrw mstatus, zero
    csrr x14, mstatus;          CHECK(24, x14, 0x00001800)
    // instret counts retired instructions exactly; cycle moves on
    csrr x5, instret
    nop
    nop
    csrr x6, instret
    sub x14, x6, x5;            CHECK(30, x14, 3)
    csrr x5, cycle
    csrr x6, cycle
    sub x14, x6, x5;            CHECK(31, x14, 7)
    csrr x5, mcycle
    csrr x6, cycleh;            CHECK(32, x6, 0)
    // the sysctl cycle counter: a load from a peripheral takes 11 cycles
    li s0, QFAB_SYSCTL_CYCLE_LO_ADDR
    lw x5, 0(s0)
    lw x6, 0(s0)
    sub x14, x6, x5;            CHECK(34, x14, 11)
    lw x14, 4(s0);              CHECK(35, x14, 0)
    li x1, 1000
    csrw minstret, x1
    csrr x14, minstret;         CHECK(33, x14, 1000)

    // ecall, ebreak and illegal instructions trap with their cause
    li x1, 0x8
    csrw mstatus, x1                        // MIE = 1
    TRAP_BEGIN(40)
    ecall
    TRAP_END(11)
    bne x30, zero, fail
    csrr x14, mstatus;          CHECK(41, x14, 0x00001880)  // MPIE = 1, MIE = 0
    TRAP_BEGIN(42)
    ebreak
    TRAP_END(3)
    TRAP_BEGIN(43)
    .word 0x00000000
    TRAP_END(2)
    bne x30, zero, fail
    TRAP_BEGIN(44)
    .word 0xffffffff
    TRAP_END(2)
    li x7, -1; bne x30, x7, fail
    TRAP_BEGIN(45)
    .word 0x02000033                       // mul: no M extension
    TRAP_END(2)
    li x7, 0x02000033; bne x30, x7, fail
    TRAP_BEGIN(46)
    csrw cycle, x1                          // read-only
    TRAP_END(2)
    TRAP_BEGIN(47)
    csrr x14, 0x7c0                         // not implemented
    TRAP_END(2)
    TRAP_BEGIN(48)
    .word 0x40001013                        // slli with funct7 = 0x20
    TRAP_END(2)
    TRAP_BEGIN(49)
    .word 0x00002063                        // branch funct3 = 2
    TRAP_END(2)
    csrr x14, cycle                         // reading a read-only CSR is fine

    // mret returns to mepc and restores MIE from MPIE
    li TESTNUM, 60
    la x1, 61f
    csrw mepc, x1
    li x1, 0x80                             // MPIE = 1, MIE = 0
    csrw mstatus, x1
    mret
    j fail
61: csrr x14, mstatus;          CHECK(62, x14, 0x00001888)
    fence
    fence.i
    wfi
RVTEST_END
