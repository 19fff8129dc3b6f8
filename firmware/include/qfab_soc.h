/* Generated from qfab/hw/soc/memory_map.py; do not edit. */
#ifndef QFAB_SOC_H
#define QFAB_SOC_H

#include <stdint.h>

/* boot ROM: firmware code and constants */
#define QFAB_ROM_BASE 0x00000000u
#define QFAB_ROM_SIZE 0x00008000u

/* console, simulation exit and cycle counter */
#define QFAB_SYSCTL_BASE 0x40000000u
#define QFAB_SYSCTL_SIZE 0x00001000u
/* store: print the low byte on the simulation console (w) */
#define QFAB_SYSCTL_CONSOLE (*(volatile uint32_t *)0x40000000u)
/* store: end the simulation with this status (0 = success) (w) */
#define QFAB_SYSCTL_EXIT (*(volatile uint32_t *)0x40000004u)
/* cycles since reset, low word (r) */
#define QFAB_SYSCTL_CYCLE_LO (*(volatile uint32_t *)0x40000008u)
/* cycles since reset, high word (r) */
#define QFAB_SYSCTL_CYCLE_HI (*(volatile uint32_t *)0x4000000cu)

/* RAM: data, stack, or a whole program */
#define QFAB_RAM_BASE 0x80000000u
#define QFAB_RAM_SIZE 0x00020000u

#endif /* QFAB_SOC_H */
