// C start-up for the qfab SoC: stack, global pointer, .data copied from its load address,
// .bss cleared, a trap vector, then main(); main's return value goes to the EXIT register.
#include "qfab_soc.h"

    .section .text.init, "ax", @progbits
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    la sp, __stack_top
    la a0, __data_load
    la a1, __data_start
    la a2, __data_end
    beq a0, a1, 2f                  // linked to run in place (link_ram.ld)
1:  bgeu a1, a2, 2f
    lw t0, 0(a0)
    sw t0, 0(a1)
    addi a0, a0, 4
    addi a1, a1, 4
    j 1b
2:  la a0, __bss_start
    la a1, __bss_end
3:  bgeu a0, a1, 4f
    sw zero, 0(a0)
    addi a0, a0, 4
    j 3b
4:  la t0, qfab_trap
    csrw mtvec, t0
    li a0, 0
    li a1, 0
    call main
    call qfab_exit

// A trap the program did not expect ends the run with status 128 + mcause, like a signal.
    .weak qfab_trap
    .balign 4
qfab_trap:
    csrr a0, mcause
    addi a0, a0, 128
    call qfab_exit
