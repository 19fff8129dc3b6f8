/* Generated from hw/soc/memory_map.py (qfab.hw.soc.memory_map); do not edit. */
#ifndef QFAB_SOC_H
#define QFAB_SOC_H

/* boot ROM: firmware code and constants */
#define QFAB_ROM_BASE 0x00000000
#define QFAB_ROM_SIZE 0x00008000

/* console, simulation exit and cycle counter */
#define QFAB_SYSCTL_BASE 0x40000000
#define QFAB_SYSCTL_SIZE 0x00001000
/* store: print the low byte on the simulation console (w) */
#define QFAB_SYSCTL_CONSOLE_ADDR 0x40000000
/* store: end the simulation with this status (0 = success) (w) */
#define QFAB_SYSCTL_EXIT_ADDR 0x40000004
/* cycles since reset, low word (r) */
#define QFAB_SYSCTL_CYCLE_LO_ADDR 0x40000008
/* cycles since reset, high word (r) */
#define QFAB_SYSCTL_CYCLE_HI_ADDR 0x4000000c

/* accelerator streamer: DMA jobs between RAM and the accelerator, cycle counters (absent from a SoC without an accelerator: accesses fault) */
#define QFAB_ACCEL_BASE 0x40001000
#define QFAB_ACCEL_SIZE 0x00001000
/* store 1: start a job (ignored while busy) (w) */
#define QFAB_ACCEL_CTRL_ADDR 0x40001000
/* bit 0 busy, bit 1 done, bit 2 error (r) */
#define QFAB_ACCEL_STATUS_ADDR 0x40001004
/* bit 0 input range, bit 1 output range outside RAM or unaligned (r) */
#define QFAB_ACCEL_ERROR_ADDR 0x40001008
/* RAM byte address of the first input beat (rw) */
#define QFAB_ACCEL_IN_ADDR_ADDR 0x4000100c
/* input beats in the job (rw) */
#define QFAB_ACCEL_IN_BEATS_ADDR 0x40001010
/* RAM byte address for the first output beat (rw) */
#define QFAB_ACCEL_OUT_ADDR_ADDR 0x40001014
/* output beats in the job (rw) */
#define QFAB_ACCEL_OUT_BEATS_ADDR 0x40001018
/* cycles of the last job, start to done (r) */
#define QFAB_ACCEL_CYCLES_ADDR 0x4000101c
/* cycles from the last start to its first output beat (r) */
#define QFAB_ACCEL_LATENCY_ADDR 0x40001020
/* words per input beat (bits 0-7), per output beat (8-15), stages (16-23) (r) */
#define QFAB_ACCEL_INFO_ADDR 0x40001024
/* cycles stage i was active in the last job (r) */
#define QFAB_ACCEL_STAGE_CYCLES_ADDR 0x40001040
#define QFAB_ACCEL_STAGE_CYCLES_COUNT 48

/* RAM: data, stack, or a whole program */
#define QFAB_RAM_BASE 0x80000000
#define QFAB_RAM_SIZE 0x00020000

#ifndef __ASSEMBLER__
#include <stdint.h>
#define QFAB_SYSCTL_CONSOLE (*(volatile uint32_t *)QFAB_SYSCTL_CONSOLE_ADDR)
#define QFAB_SYSCTL_EXIT (*(volatile uint32_t *)QFAB_SYSCTL_EXIT_ADDR)
#define QFAB_SYSCTL_CYCLE_LO (*(volatile uint32_t *)QFAB_SYSCTL_CYCLE_LO_ADDR)
#define QFAB_SYSCTL_CYCLE_HI (*(volatile uint32_t *)QFAB_SYSCTL_CYCLE_HI_ADDR)
#define QFAB_ACCEL_CTRL (*(volatile uint32_t *)QFAB_ACCEL_CTRL_ADDR)
#define QFAB_ACCEL_STATUS (*(volatile uint32_t *)QFAB_ACCEL_STATUS_ADDR)
#define QFAB_ACCEL_ERROR (*(volatile uint32_t *)QFAB_ACCEL_ERROR_ADDR)
#define QFAB_ACCEL_IN_ADDR (*(volatile uint32_t *)QFAB_ACCEL_IN_ADDR_ADDR)
#define QFAB_ACCEL_IN_BEATS (*(volatile uint32_t *)QFAB_ACCEL_IN_BEATS_ADDR)
#define QFAB_ACCEL_OUT_ADDR (*(volatile uint32_t *)QFAB_ACCEL_OUT_ADDR_ADDR)
#define QFAB_ACCEL_OUT_BEATS (*(volatile uint32_t *)QFAB_ACCEL_OUT_BEATS_ADDR)
#define QFAB_ACCEL_CYCLES (*(volatile uint32_t *)QFAB_ACCEL_CYCLES_ADDR)
#define QFAB_ACCEL_LATENCY (*(volatile uint32_t *)QFAB_ACCEL_LATENCY_ADDR)
#define QFAB_ACCEL_INFO (*(volatile uint32_t *)QFAB_ACCEL_INFO_ADDR)
#define QFAB_ACCEL_STAGE_CYCLES(i) (((volatile uint32_t *)QFAB_ACCEL_STAGE_CYCLES_ADDR)[i])
#endif

#endif /* QFAB_SOC_H */
