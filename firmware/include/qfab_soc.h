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

/* RAM: data, stack, or a whole program */
#define QFAB_RAM_BASE 0x80000000
#define QFAB_RAM_SIZE 0x00020000

#ifndef __ASSEMBLER__
#include <stdint.h>
#define QFAB_SYSCTL_CONSOLE (*(volatile uint32_t *)QFAB_SYSCTL_CONSOLE_ADDR)
#define QFAB_SYSCTL_EXIT (*(volatile uint32_t *)QFAB_SYSCTL_EXIT_ADDR)
#define QFAB_SYSCTL_CYCLE_LO (*(volatile uint32_t *)QFAB_SYSCTL_CYCLE_LO_ADDR)
#define QFAB_SYSCTL_CYCLE_HI (*(volatile uint32_t *)QFAB_SYSCTL_CYCLE_HI_ADDR)
#endif

#endif /* QFAB_SOC_H */
